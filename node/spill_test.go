package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

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

// spillSym is the test content of symbol esi.
func spillSym(esi uint32, t int) []byte {
	b := make([]byte, t)
	for i := range b {
		b[i] = byte(esi*7 + uint32(i))
	}
	return b
}

func TestSpillImageAndResume(t *testing.T) {
	const T, K = 16, 10
	for _, memory := range []int64{1 << 20, 0} {
		dir := t.TempDir()
		s, err := openSpill(dir, T, []int{K, K}, func(int) bool { return false }, memory)
		if err != nil {
			t.Fatal(err)
		}
		add := func(sbn int, esi uint32) {
			t.Helper()
			if !s.markSeen(sbn, esi) {
				t.Fatalf("block %d esi %d seen twice", sbn, esi)
			}
			if _, err := s.add(sbn, esi, spillSym(esi, T)); err != nil {
				t.Fatal(err)
			}
		}
		// Block 0: every source symbol, out of order, and one repair.
		for _, e := range []uint32{9, 0, 1, 2, 3, 4, 5, 6, 7, 100, 8} {
			add(0, e)
		}
		// Block 1: some sources and repairs.
		for _, e := range []uint32{1, 3, 1 << 23, 12} {
			add(1, e)
		}
		img, ok := s.image(0)
		if ok != (memory > 0) {
			t.Fatalf("memory %d: image available = %v", memory, ok)
		}
		if ok {
			for e := range uint32(K) {
				if string(img[int(e)*T:int(e+1)*T]) != string(spillSym(e, T)) {
					t.Fatalf("image symbol %d wrong", e)
				}
			}
		}
		if _, ok := s.image(1); ok {
			t.Fatal("image of an incomplete block")
		}
		check := func(s *spillStore, sbn int, want []uint32) {
			t.Helper()
			got := map[uint32]bool{}
			err := s.read(sbn, 1000, func(esi uint32, sym []byte, _ peer.ID, _ bool) error {
				if string(sym) != string(spillSym(esi, T)) {
					t.Fatalf("block %d esi %d: wrong content", sbn, esi)
				}
				got[esi] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("block %d: read %v, want %v", sbn, got, want)
			}
			for _, e := range want {
				if !got[e] {
					t.Fatalf("block %d: esi %d missing from %v", sbn, e, got)
				}
			}
		}
		want1 := []uint32{1, 3, 1 << 23, 12}
		check(s, 0, []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100})
		check(s, 1, want1)
		if n := s.sourceCount(1); n != 2 {
			t.Fatalf("block 1 holds %d source symbols, want 2", n)
		}
		// An interrupted download keeps everything for the resume.
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		r, err := openSpill(dir, T, []int{K, K}, func(sbn int) bool { return sbn == 0 }, memory)
		if err != nil {
			t.Fatal(err)
		}
		check(r, 1, want1)
		if r.count(1) != 4 || r.sourceCount(1) != 2 || r.markSeen(1, 12) {
			t.Fatalf("resumed block 1: count %d, sources %d", r.count(1), r.sourceCount(1))
		}
		r.close()
	}
}
