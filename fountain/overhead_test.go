package fountain

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestOverhead measures decoding from exactly K and from K+2 random
// encoding symbols at K=1000: at least 99 % must decode from K, all from
// K+2. It runs 10,000 trials, or 300 with -short.
func TestOverhead(t *testing.T) {
	const K, T = 1000, 4
	trials := 10000
	if testing.Short() {
		trials = 300
	}
	o, err := NewOTI(K*T, T, WithMaxBlockSymbols(K))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(11, 12))
	src := randBytes(r, K*T)
	enc, err := NewBlockEncoder(o, 0, src)
	if err != nil {
		t.Fatal(err)
	}
	dec := NewBlockDecoder(o, 0)
	out := make([]byte, K*T)
	sym := make([]byte, T)
	seen := make(map[uint32]bool)
	failK, failK1 := 0, 0
	for trial := 0; trial < trials; trial++ {
		dec.Reset()
		clear(seen)
		// Random erasures: each symbol of a stream of source and repair
		// symbols is received with probability 1/2 until K arrived.
		var esis []uint32
		for esi := uint32(0); len(esis) < K+2; esi++ {
			if r.IntN(2) == 0 {
				esis = append(esis, esi)
			}
		}
		add := func(e uint32) {
			enc.Symbol(e, sym)
			if _, err := dec.Add(e, sym); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range esis[:K] {
			add(e)
		}
		err := dec.Decode(out)
		if errors.Is(err, ErrNeedMore) {
			failK++
			add(esis[K])
			if err = dec.Decode(out); errors.Is(err, ErrNeedMore) {
				failK1++
				add(esis[K+1])
				err = dec.Decode(out)
			}
		}
		if err != nil {
			t.Fatalf("trial %d: K+2 symbols did not decode: %v", trial, err)
		}
		if !bytes.Equal(out, src) {
			t.Fatalf("trial %d: wrong bytes", trial)
		}
	}
	rate := float64(failK) / float64(trials)
	t.Logf("%d trials: %d failed with K symbols (%.3f %%), %d with K+1, 0 with K+2", trials, failK, 100*rate, failK1)
	if rate > 0.01 {
		t.Fatalf("decoding from K symbols failed in %.2f %% of trials", 100*rate)
	}
}
