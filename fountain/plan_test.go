package fountain

import (
	"bytes"
	"testing"
)

// TestBackSubChunkWidths runs one plan with every Four-Russians chunk
// width (6 bits makes chunks straddle 64-bit words) and compares results.
func TestBackSubChunkWidths(t *testing.T) {
	const T = 16
	p, _ := newCodeParams(1000)
	pl, err := buildPlan(&p, seq(p.Kp))
	if err != nil {
		t.Fatal(err)
	}
	if pl.back.u <= 64 {
		t.Fatalf("u=%d too small to straddle words", pl.back.u)
	}
	src := xorshiftData(p.Kp, T)
	var ref [][]byte
	for _, bits := range []int{6, 5, 4, 3, 2} {
		q := *pl
		q.back.bits = bits
		ws := make([][]byte, pl.slots)
		sliceSlots(ws, make([]byte, pl.slots*T), T)
		for i := 0; i < p.Kp; i++ {
			copy(ws[p.S+p.H+i], src[i*T:])
		}
		q.run(newKernels(KernelsAuto), ws)
		got := pickSlots(&q, ws)
		if ref == nil {
			ref = got
			continue
		}
		for c := range got {
			if !bytes.Equal(got[c], ref[c]) {
				t.Fatalf("bits=%d: intermediate %d differs", bits, c)
			}
		}
	}
}

// TestRankDeficient checks that a row set that cannot determine the block
// is reported instead of being solved wrongly.
func TestRankDeficient(t *testing.T) {
	p, _ := newCodeParams(50)
	// Too few rows.
	if _, err := buildPlan(&p, seq(p.Kp-1)); err != ErrNeedMore {
		t.Fatalf("K'-1 rows: %v", err)
	}
	// Enough rows, but one repeated: rank K'-1.
	isis := append(seq(p.Kp-1), 0)
	if _, err := buildPlan(&p, isis); err != ErrNeedMore {
		t.Fatalf("repeated row: %v", err)
	}
}
