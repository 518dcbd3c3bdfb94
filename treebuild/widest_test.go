package treebuild

import (
	"math"
	"testing"
)

func TestWidestPathTable1(t *testing.T) {
	m := loadTable1(t)
	uw := idx(t, m, "UW")
	tree, err := WidestPathTree(m, uw)
	if err != nil {
		t.Fatal(err)
	}
	direct := DirectRates(m, uw)
	want := map[string]float64{"UCLA": 39.0, "Berkeley": 38.4}
	wantDirect := map[string]float64{"UCLA": 39.0, "Berkeley": 38.4, "Arizona": 19.3, "Cornell": 16.5,
		"GT": 17.1, "UTK": 12.8, "Duke": 9.2, "BU": 8.7}
	t.Logf("%-9s %-9s %5s %10s %10s", "host", "parent", "hops", "tree Mbit", "direct")
	for h := range m.Len() {
		if h == uw {
			continue
		}
		name := m.Name(h)
		w, ok := want[name]
		if !ok {
			w = 21.7
		}
		t.Logf("%-9s %-9s %5d %10.1f %10.1f", name, m.Name(tree.Parent[h]), tree.Hops[h], Mbit(tree.Width[h]), Mbit(direct[h]))
		if got := Mbit(tree.Width[h]); !near(got, w, 1e-9) {
			t.Errorf("%s width %g Mbit/s, want %g", name, got, w)
		}
		if got := Mbit(direct[h]); !near(got, wantDirect[name], 1e-9) {
			t.Errorf("%s direct %g Mbit/s, want %g", name, got, wantDirect[name])
		}
		// The width is the narrowest hop on the path to the root.
		pw := math.Inf(1)
		for c := h; c != uw; c = tree.Parent[c] {
			pw = math.Min(pw, m.Rate(tree.Parent[c], c))
		}
		if pw != tree.Width[h] {
			t.Errorf("%s: path bottleneck %g != width %g", name, pw, tree.Width[h])
		}
	}
	if !math.IsInf(tree.Width[uw], 1) || tree.Parent[uw] != -1 {
		t.Error("root must have unbounded width and no parent")
	}
	if got := len(tree.Children(uw)); got != 2 {
		t.Errorf("UW feeds %d hosts, want 2 (UCLA and Berkeley)", got)
	}
}

// TestWidestPathOptimal checks the tree against brute force on small random
// matrices: no host has a wider path by any route, and ties go to fewer hops.
func TestWidestPathOptimal(t *testing.T) {
	for seed := range 50 {
		m := randomMatrix(t, 7, uint64(seed))
		tree, err := WidestPathTree(m, 0)
		if err != nil {
			t.Fatal(err)
		}
		best := bruteWidest(m, 0)
		for h := range m.Len() {
			if tree.Width[h] != best[h] {
				t.Fatalf("seed %d host %d: width %g, brute force %g", seed, h, tree.Width[h], best[h])
			}
		}
	}
}

// bruteWidest relaxes widths Bellman-Ford style until nothing changes.
func bruteWidest(m *RateMatrix, root int) []float64 {
	w := make([]float64, m.Len())
	w[root] = math.Inf(1)
	for changed := true; changed; {
		changed = false
		for u := range m.Len() {
			for v := range m.Len() {
				if x := math.Min(w[u], m.Rate(u, v)); v != root && x > w[v] {
					w[v], changed = x, true
				}
			}
		}
	}
	return w
}

// randomMatrix fills an n-host matrix from a small xorshift generator, with
// some pairs missing and some rates repeated to create ties.
func randomMatrix(t testing.TB, n int, seed uint64) *RateMatrix {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = string(rune('a' + i))
	}
	m, err := NewRateMatrix(names...)
	if err != nil {
		t.Fatal(err)
	}
	x := seed*0x9E3779B97F4A7C15 + 1
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	for i := range n {
		for j := range n {
			if i != j && next()%4 != 0 {
				m.SetRate(i, j, FromMbit(float64(1+next()%10)*5))
			}
		}
	}
	return m
}

func TestWidestPathTiesFewerHops(t *testing.T) {
	m, _ := NewRateMatrix("s", "a", "b")
	m.SetRate(0, 1, 10)
	m.SetRate(1, 2, 10)
	m.SetRate(0, 2, 10)
	tree, err := WidestPathTree(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Parent[2] != 0 || tree.Hops[2] != 1 {
		t.Errorf("b: parent %d hops %d, want the direct hop", tree.Parent[2], tree.Hops[2])
	}
	if _, err := WidestPathTree(m, 3); err == nil {
		t.Error("out-of-range root accepted")
	}
}

func TestWidestPathUnreachable(t *testing.T) {
	m, _ := NewRateMatrix("s", "a", "island")
	m.SetRate(0, 1, 10)
	tree, _ := WidestPathTree(m, 0)
	if tree.Parent[2] != -1 || tree.Width[2] != 0 || tree.Hops[2] != -1 {
		t.Errorf("island: %d %g %d", tree.Parent[2], tree.Width[2], tree.Hops[2])
	}
}

func TestMaxFlow(t *testing.T) {
	// s feeds a and b at 10 each; both feed d at 10 each: d gets 20 from two
	// parents, more than any single path (10).
	m, _ := NewRateMatrix("s", "a", "b", "d")
	m.SetRate(0, 1, 10)
	m.SetRate(0, 2, 10)
	m.SetRate(1, 3, 10)
	m.SetRate(2, 3, 10)
	if f := MaxFlow(m, 0, 3); !near(f, 20, 1e-9) {
		t.Errorf("max-flow %g, want 20", f)
	}
	m.SetDownlink(3, 15)
	if f := MaxFlow(m, 0, 3); !near(f, 15, 1e-9) {
		t.Errorf("with downlink cap 15: %g", f)
	}
	m.SetDownlink(3, 0)
	m.SetUplink(0, 12) // shared by s->a and s->b
	if f := MaxFlow(m, 0, 3); !near(f, 12, 1e-9) {
		t.Errorf("with source uplink 12: %g", f)
	}
	if !math.IsInf(MaxFlow(m, 1, 1), 1) {
		t.Error("flow to oneself should be unbounded")
	}
}

// TestMaxFlowAtLeastWidest: one path is one flow, so the max-flow never
// falls below the widest-path width, and never exceeds the receiver's total
// incoming rate.
func TestMaxFlowAtLeastWidest(t *testing.T) {
	for seed := range 30 {
		m := randomMatrix(t, 6, uint64(seed)+100)
		tree, _ := WidestPathTree(m, 0)
		for h := 1; h < m.Len(); h++ {
			f := MaxFlow(m, 0, h)
			var in float64
			for u := range m.Len() {
				in += m.Rate(u, h)
			}
			if f < tree.Width[h]*(1-1e-9) || f > in*(1+1e-9) {
				t.Fatalf("seed %d host %d: flow %g, width %g, intake %g", seed, h, f, tree.Width[h], in)
			}
		}
	}
}

func TestBoundTable1(t *testing.T) {
	m := loadTable1(t)
	for h := range m.Len() {
		m.SetUplink(h, FromMbit(100))
		m.SetDownlink(h, FromMbit(100))
	}
	uw := idx(t, m, "UW")
	const size = 64 << 20
	b, err := Bound(m, uw, size)
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := WidestPathTree(m, uw)
	slowestTree := math.Inf(1)
	for h := range m.Len() {
		slowestTree = math.Min(slowestTree, tree.Width[h])
	}
	t.Logf("64 MiB from UW, 100 Mbit/s access: bound %.2f s (source %.2f s, aggregate %.2f s, flow %.2f s, slowest %s); one widest-path tree needs >= %.1f s",
		b.Seconds, b.Source, b.Aggregate, b.Flow, m.Name(b.Slowest), size/slowestTree)
	// The source must push 64 MiB through 100 Mbit/s: 5.37 s.
	if !near(b.Source, size/FromMbit(100), 1e-9) || !near(b.Seconds, 5.37, 0.01) {
		t.Errorf("bound %+v, want 5.37 s set by the source", b)
	}
	if want := size * 8 / (9 * FromMbit(100)); !near(b.Aggregate, want, 1e-9) {
		t.Errorf("aggregate %g, want %g", b.Aggregate, want)
	}
	// No receiver can take more than the source sends.
	if b.Flow < b.Source*(1-1e-9) || b.Flow > b.Seconds {
		t.Errorf("flow term %g outside [source term %g, bound %g]", b.Flow, b.Source, b.Seconds)
	}
	// Without caps, the source egress is the sum of its pair rates.
	m2 := loadTable1(t)
	b2, _ := Bound(m2, uw, size)
	var out float64
	for h := range m2.Len() {
		out += m2.Rate(uw, h)
	}
	if !near(b2.Source, size/out, 1e-9) {
		t.Errorf("uncapped source term %g, want %g", b2.Source, size/out)
	}
	if _, err := Bound(m2, -1, size); err == nil {
		t.Error("bad source accepted")
	}
}
