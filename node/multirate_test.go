package node

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/shaper"
	"github.com/romap2p/romap2p/protocol"
)

// multiRateRun builds the depth-3 tree S -> A, B; A -> C, D; C -> E; B -> F
// where every link runs at rate bytes/s except B -> F, which runs at
// rate/slowFactor (slowFactor 0: F is absent). It returns the time each
// receiver took, and how far F got by the time the others were done.
func multiRateRun(t testing.TB, size int64, rate float64, slowFactor float64, opts ...Option) (map[string]time.Duration, float64) {
	return multiRateRunBounded(t, size, rate, slowFactor, 0, opts...)
}

// multiRateRunBounded is multiRateRun that stops after limit (0: no limit);
// a receiver not done by then is given its projected time, elapsed divided
// by the fraction of the file it has.
func multiRateRunBounded(t testing.TB, size int64, rate float64, slowFactor float64, limit time.Duration, opts ...Option) (map[string]time.Duration, float64) {
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, size, 11)
	nw := shaper.NewNetwork()
	names := map[peer.ID]string{}
	shape := WithShaper(func(from, to peer.ID, w io.Writer) io.Writer {
		return nw.Writer(names[from], names[to], w)
	})
	mk := func(name string) *Node {
		n := newTestNode(t, append([]Option{shape}, opts...)...)
		names[n.host.ID()] = name
		return n
	}
	src := mk("S")
	nodes := map[string]*Node{}
	parentOf := map[string]string{"A": "S", "B": "S", "C": "A", "D": "A", "E": "C"}
	if slowFactor > 0 {
		parentOf["F"] = "B"
	}
	for _, name := range []string{"A", "B", "C", "D", "E", "F"} {
		if _, ok := parentOf[name]; ok {
			nodes[name] = mk(name)
		}
	}
	nodes["S"] = src
	for child, parent := range parentOf {
		r := rate
		if child == "F" {
			r = rate / slowFactor
		}
		nw.SetPairRate(parent, child, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		name string
		d    time.Duration
		err  error
	}
	ch := make(chan res, len(parentOf))
	start := time.Now()
	for child, parent := range parentOf {
		go func() {
			err := nodes[child].Get(ctx, c, filepath.Join(dir, child), WithParents(info(nodes[parent])))
			ch <- res{child, time.Since(start), err}
		}()
	}
	took := map[string]time.Duration{}
	others := len(parentOf)
	if slowFactor > 0 {
		others--
	}
	fFraction := 0.0
	var expire <-chan time.Time
	if limit > 0 {
		expire = time.After(limit)
	}
	for len(took) < others {
		var r res
		select {
		case r = <-ch:
		case <-expire:
			el := time.Since(start)
			for name, n := range nodes {
				if _, done := took[name]; done || name == "S" || name == "F" {
					continue
				}
				p, _ := n.Progress(c)
				frac := max(float64(p.SymbolsNew)/float64(p.Needed), 1e-3)
				took[name] = time.Duration(float64(el) / frac)
			}
			continue
		}
		if r.err != nil {
			t.Fatalf("%s: %v", r.name, r.err)
		}
		if r.name == "F" {
			fFraction = 1
			continue
		}
		took[r.name] = r.d
		if got := fileHash(t, filepath.Join(dir, r.name)); got != want {
			t.Fatalf("%s: output differs", r.name)
		}
	}
	if slowFactor > 0 && fFraction < 1 {
		p, _ := nodes["F"].Progress(c)
		fFraction = float64(p.SymbolsNew) / float64(p.Needed)
	}
	return took, fFraction
}

// TestSlowLeafIsolated checks forward-when-feasible end to end: with one
// leaf at 1/20 of every other link's rate, all other receivers complete
// while the slow leaf is still far from done.
func TestSlowLeafIsolated(t *testing.T) {
	size := int64(16 << 20)
	if testing.Short() {
		size = 4 << 20
	}
	took, frac := multiRateRun(t, size, 16e6, 20)
	for name, d := range took {
		t.Logf("%s: %.2f s", name, d.Seconds())
	}
	t.Logf("slow leaf had %.0f%% when the others were done", 100*frac)
	if frac > 0.6 {
		t.Fatalf("slow leaf had %.0f%% of the file when the others finished: it was not slower, the test proves nothing", 100*frac)
	}
}

// BenchmarkMultiRate measures every other receiver's goodput with and
// without a slow leaf at 1/20 of the rate, in forward-when-feasible and in
// back-pressure mode, in the same run.
func BenchmarkMultiRate(b *testing.B) {
	size := int64(32 << 20)
	const rate = 16e6
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"feasible", nil}, {"backpressure", []Option{WithBackPressure()}}} {
		b.Run(mode.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				base, _ := multiRateRun(b, size, rate, 0, mode.opts...)
				// In back-pressure mode the others are dragged to the slow
				// leaf's pace and would take minutes: bound the run and
				// project their times from the fraction they have.
				slow, frac := multiRateRunBounded(b, size, rate, 20, 20*time.Second, mode.opts...)
				worst := 1e9
				line := ""
				for name, d := range base {
					r := d.Seconds() / slow[name].Seconds()
					worst = min(worst, r)
					line += fmt.Sprintf(" %s=%.2f", name, r)
				}
				b.ReportMetric(worst, "worst-ratio")
				b.Logf("%s: goodput with slow leaf / without:%s (slow leaf %.0f%% done)", mode.name, line, 100*frac)
			}
		})
	}
}

// TestTooSlowSheds drops a relay from its parent as too slow in one stripe:
// the relay must at once drop its own children in that stripe (so that they
// look for a faster branch) and keep the others, and everyone completes.
func TestTooSlowSheds(t *testing.T) {
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, 12<<20, 9)
	nw := shaper.NewNetwork()
	shape := WithShaper(func(from, to peer.ID, w io.Writer) io.Writer {
		nw.SetPairRate(from.String(), to.String(), 6e6)
		return nw.Writer(from.String(), to.String(), w)
	})
	src := newTestNode(t, WithStripes(2), shape)
	a := newTestNode(t, WithStripes(2), shape)
	z := newTestNode(t, WithStripes(2), shape)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	go func() { errc <- a.Get(ctx, c, filepath.Join(dir, "a"), WithParents(info(src))) }()
	go func() { errc <- z.Get(ctx, c, filepath.Join(dir, "z"), WithParents(info(a))) }()

	// The children of a session in one stripe, oldest first.
	kids := func(n *Node, stripe int) []*child {
		s := n.session(c)
		if s == nil {
			return nil
		}
		var out []*child
		for _, k := range s.down.list() {
			if k.stripe == stripe && !k.probe {
				out = append(out, k)
			}
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(kids(src, 0)) == 0 || len(kids(a, 0)) == 0 || len(kids(a, 1)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the chain did not form")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before0, before1 := kids(a, 0)[0], kids(a, 1)[0]
	kids(src, 0)[0].leave(protocol.GoodbyeTooSlow, "test: too slow")
	for {
		k0 := kids(a, 0)
		if len(k0) == 0 || k0[0] != before0 {
			break // shed (and maybe back already, as a new subscription)
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay kept its child in the stripe it was dropped from")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if k1 := kids(a, 1); len(k1) == 0 || k1[0] != before1 {
		t.Error("the relay dropped its child in the other stripe too")
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "z"} {
		if fileHash(t, filepath.Join(dir, name)) != want {
			t.Errorf("%s: output differs", name)
		}
	}
}
