package swarm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/romap2p/romap2p/treebuild"
)

// TestSwarmStripeParents runs Table I with eight stripes, the receivers choosing
// their parents themselves, and checks that every receiver names a parent
// for every stripe and that each stripe's parents form a tree rooted at the
// source: every receiver reaches the source by following its parents,
// without a cycle. Under the race detector a receiver that received no
// symbol of a stripe may have no parent there (see raceEnabled); it must
// not name one then, and the others must still form a tree.
func TestSwarmStripeParents(t *testing.T) {
	m, err := TableI()
	if err != nil {
		t.Fatal(err)
	}
	const stripes = 8
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Matrix:   m,
		Source:   TableISource,
		Size:     8 << 20,
		Stripes:  stripes,
		Uplink:   treebuild.FromMbit(100),
		Downlink: treebuild.FromMbit(100),
		Dir:      t.TempDir(),
		Seed:     5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stripes != stripes {
		t.Fatalf("result has %d stripes, want %d", res.Stripes, stripes)
	}
	members := map[string]bool{res.Source: true}
	for _, p := range res.Peers {
		members[p.Name] = true
	}
	for s := range stripes {
		parent := map[string]string{}
		var line []string
		for _, p := range res.Peers {
			if !p.OK {
				t.Fatalf("%s: not ok: %s", p.Name, p.Err)
			}
			if len(p.StripeParents) != stripes || len(p.StripeGoodputBps) != stripes {
				t.Fatalf("%s: %d stripe parents and %d stripe goodputs, want %d", p.Name, len(p.StripeParents), len(p.StripeGoodputBps), stripes)
			}
			up := p.StripeParents[s]
			if up == "" && raceEnabled && p.StripeGoodputBps[s] == 0 {
				t.Logf("stripe %d: %s completed without a symbol or a parent of this stripe", s, p.Name)
				continue
			}
			if !members[up] || up == p.Name {
				t.Errorf("stripe %d: %s has parent %q", s, p.Name, up)
			}
			parent[p.Name] = up
			line = append(line, p.Name+"<-"+up)
		}
		t.Logf("stripe %d: %s", s, strings.Join(line, " "))
		for _, p := range res.Peers {
			at, steps := p.Name, 0
			for at != res.Source && at != "" && steps <= len(res.Peers) {
				at, steps = parent[at], steps+1
			}
			if at == "" && p.StripeParents[s] != "" {
				t.Logf("stripe %d: %s hangs below a receiver without a parent", s, p.Name)
				continue
			}
			if at != res.Source && p.StripeParents[s] != "" {
				t.Errorf("stripe %d: following the parents from %s does not reach the source", s, p.Name)
			}
		}
	}
	for _, p := range res.Peers {
		var sum float64
		for _, g := range p.StripeGoodputBps {
			if g < 0 {
				t.Errorf("%s: negative stripe goodput %v", p.Name, p.StripeGoodputBps)
			}
			sum += g
		}
		if d := sum - p.GoodputBps; d > 1 || d < -1 {
			t.Errorf("%s: stripe goodputs sum to %.0f, goodput %.0f", p.Name, sum, p.GoodputBps)
		}
	}
}
