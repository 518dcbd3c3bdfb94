package node

import "testing"

func TestESISet(t *testing.T) {
	e := newESISet(100)
	for _, esi := range []uint32{0, 99, 149, 150, 1 << 23, 1<<24 - 1} {
		if !e.add(esi) {
			t.Fatalf("first add of %d reported a duplicate", esi)
		}
		if e.add(esi) {
			t.Fatalf("second add of %d reported new", esi)
		}
	}
	if e.n != 6 {
		t.Fatalf("n = %d, want 6", e.n)
	}
	e.reset()
	if e.n != 0 || !e.add(99) || !e.add(1<<23) {
		t.Fatal("reset kept members")
	}
}
