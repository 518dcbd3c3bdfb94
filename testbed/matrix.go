package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"

	"github.com/romap2p/romap2p/treebuild"
)

// loadMatrix reads a matrix file, gives every host without an access line
// the default uplink and downlink (Mbit/s), and multiplies every rate and cap
// by scale. The result holds bytes per second, as treebuild does.
func loadMatrix(path string, upMbit, downMbit, scale float64) (*treebuild.RateMatrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	defer f.Close()
	m, err := treebuild.ParseMatrix(f)
	if err != nil {
		return nil, fmt.Errorf("matrix %s: %w", path, err)
	}
	return withCaps(m, upMbit, downMbit, scale)
}

// withCaps returns a copy of m in which hosts without caps get the default
// ones (Mbit/s) and every rate and cap is multiplied by scale.
func withCaps(m *treebuild.RateMatrix, upMbit, downMbit, scale float64) (*treebuild.RateMatrix, error) {
	if !(scale > 0) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("matrix: scale %v is not a positive number", scale)
	}
	if !(upMbit > 0) || !(downMbit > 0) || math.IsInf(upMbit, 0) || math.IsInf(downMbit, 0) {
		return nil, fmt.Errorf("matrix: default uplink %v and downlink %v Mbit/s must be positive", upMbit, downMbit)
	}
	c, err := treebuild.NewRateMatrix(m.Hosts()...)
	if err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	for i := range m.Len() {
		for j := range m.Len() {
			if r, ok := m.PairRate(i, j); ok && i != j {
				c.SetRate(i, j, r*scale)
			}
		}
		up, down := m.Uplink(i), m.Downlink(i)
		if math.IsInf(up, 1) {
			up = treebuild.FromMbit(upMbit)
		}
		if math.IsInf(down, 1) {
			down = treebuild.FromMbit(downMbit)
		}
		c.SetUplink(i, up*scale)
		c.SetDownlink(i, down*scale)
	}
	return c, nil
}

// receiverBound is what the matrix predicts for one receiver.
type receiverBound struct {
	// BoundS is size / max-flow from the source (max-flow is at most the
	// receiver's downlink): no scheme delivers the file faster.
	BoundS float64 `json:"bound_s"`
	// WidthMbit is the bottleneck of the receiver's path in the widest-path
	// tree: the rate of the single best tree, one connection at a time.
	WidthMbit float64 `json:"width_mbit"`
	// Eq2Mbit is the paper's eq. 2 on that tree: the slowest hop of the
	// chain, each hop at its pair rate with the parent's uplink shared
	// among its children.
	Eq2Mbit float64 `json:"eq2_mbit"`
	// TreeS is size / Eq2Mbit: the single tree's time.
	TreeS float64 `json:"tree_s"`
	// MaxFlowMbit is the multi-parent max-flow from the source.
	MaxFlowMbit float64 `json:"maxflow_mbit"`
	// DirectMbit is the source's direct rate to this receiver alone.
	DirectMbit float64 `json:"direct_mbit"`
	// Parent is the receiver's parent in the widest-path tree.
	Parent string `json:"parent,omitempty"`
	// Hops is the receiver's depth in that tree.
	Hops int `json:"hops"`
}

// analysis is everything the matrix predicts for a case.
type analysis struct {
	Receivers map[string]receiverBound
	// Whole is the whole-swarm bound, as the in-process swarm reports it.
	Whole treebuild.Bounds
}

// analyse computes per-receiver bounds, the widest-path tree and eq. 2 for a
// file of size bytes from src on m (caps applied, bytes/s).
func analyse(m *treebuild.RateMatrix, src int, size float64) (*analysis, error) {
	whole, err := treebuild.Bound(m, src, size)
	if err != nil {
		return nil, fmt.Errorf("analyse: %w", err)
	}
	tree, err := treebuild.WidestPathTree(m, src)
	if err != nil {
		return nil, fmt.Errorf("analyse: %w", err)
	}
	children := make([]int, m.Len())
	for _, p := range tree.Parent {
		if p >= 0 {
			children[p]++
		}
	}
	// eq. 2 along the tree, parents before children (by depth).
	order := make([]int, 0, m.Len())
	for h := range m.Len() {
		if tree.Hops[h] >= 0 {
			order = append(order, h)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return tree.Hops[order[a]] < tree.Hops[order[b]] })
	eq2 := make([]float64, m.Len())
	eq2[src] = math.Inf(1)
	for _, h := range order {
		p := tree.Parent[h]
		if p < 0 {
			continue
		}
		hop := math.Min(m.Rate(p, h), m.Uplink(p)/float64(children[p]))
		eq2[h] = math.Min(eq2[p], hop)
	}
	a := &analysis{Receivers: map[string]receiverBound{}, Whole: whole}
	for h := range m.Len() {
		if h == src {
			continue
		}
		flow := math.Min(treebuild.MaxFlow(m, src, h), m.Downlink(h))
		rb := receiverBound{
			BoundS:      size / flow,
			WidthMbit:   treebuild.Mbit(tree.Width[h]),
			Eq2Mbit:     treebuild.Mbit(eq2[h]),
			MaxFlowMbit: treebuild.Mbit(flow),
			DirectMbit:  treebuild.Mbit(m.Rate(src, h)),
			Hops:        tree.Hops[h],
		}
		if eq2[h] > 0 {
			rb.TreeS = size / eq2[h]
		}
		if p := tree.Parent[h]; p >= 0 {
			rb.Parent = m.Name(p)
		}
		a.Receivers[m.Name(h)] = rb
	}
	return a, nil
}

// genOptions are the knobs of a generated matrix (Mbit/s).
type genOptions struct {
	Hosts, Regions int
	Seed           uint64
	// Slow hosts sit behind a slow access link drawn from [SlowMin, SlowMax].
	Slow             int
	SlowMin, SlowMax float64
	// Inside a region pairs run in [InMin, InMax], between regions in
	// [OutMin, OutMax].
	InMin, InMax   float64
	OutMin, OutMax float64
}

// defaultGen returns the defaults of gen for n hosts in r regions.
func defaultGen(n, r int, seed uint64) genOptions {
	return genOptions{
		Hosts: n, Regions: r, Seed: seed,
		Slow: n / 3, SlowMin: 3, SlowMax: 6,
		InMin: 40, InMax: 95, OutMin: 5, OutMax: 25,
	}
}

func (o genOptions) validate() error {
	switch {
	case o.Hosts < 2 || o.Hosts > 250:
		return fmt.Errorf("gen: %d hosts out of range [2, 250]", o.Hosts)
	case o.Regions < 1 || o.Regions > o.Hosts:
		return fmt.Errorf("gen: %d regions out of range [1, %d]", o.Regions, o.Hosts)
	case o.Slow < 0 || o.Slow > o.Hosts-1:
		return fmt.Errorf("gen: %d slow hosts out of range [0, %d] (the source is never slow)", o.Slow, o.Hosts-1)
	case !(o.SlowMin > 0) || o.SlowMax < o.SlowMin:
		return fmt.Errorf("gen: slow access range [%v, %v] Mbit/s is empty", o.SlowMin, o.SlowMax)
	case !(o.InMin > 0) || o.InMax < o.InMin || !(o.OutMin > 0) || o.OutMax < o.OutMin:
		return fmt.Errorf("gen: pair rate ranges must be non-empty and positive")
	}
	return nil
}

// gen writes a random matrix: hosts h01.. spread round-robin over regions
// (region letters a, b, ...), fast inside a region and slow between, and
// o.Slow hosts other than the first (the natural source) behind slow
// access links. The same options give the same matrix.
func gen(o genOptions) (*treebuild.RateMatrix, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x726f6d61))
	names := make([]string, o.Hosts)
	region := make([]int, o.Hosts)
	for i := range names {
		region[i] = i % o.Regions
		names[i] = fmt.Sprintf("%c%02d", 'a'+rune(region[i]%26), i+1)
	}
	m, err := treebuild.NewRateMatrix(names...)
	if err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	draw := func(lo, hi float64) float64 { return math.Round((lo+rng.Float64()*(hi-lo))*10) / 10 }
	for i := range names {
		for j := range names {
			if i == j {
				continue
			}
			if region[i] == region[j] {
				m.SetRate(i, j, treebuild.FromMbit(draw(o.InMin, o.InMax)))
			} else {
				m.SetRate(i, j, treebuild.FromMbit(draw(o.OutMin, o.OutMax)))
			}
		}
	}
	for _, k := range rng.Perm(o.Hosts - 1)[:o.Slow] {
		h := k + 1
		c := treebuild.FromMbit(draw(o.SlowMin, o.SlowMax))
		m.SetUplink(h, c)
		m.SetDownlink(h, c)
	}
	return m, nil
}

// genHeader is the comment gen puts above a matrix.
func genHeader(o genOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# generated: %d hosts, %d regions, seed %d; inside a region %g-%g Mbit/s, between %g-%g;\n",
		o.Hosts, o.Regions, o.Seed, o.InMin, o.InMax, o.OutMin, o.OutMax)
	fmt.Fprintf(&b, "# %d hosts behind %g-%g Mbit/s access links; the others get the default caps. Source: the first host.\n",
		o.Slow, o.SlowMin, o.SlowMax)
	return b.String()
}
