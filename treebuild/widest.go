package treebuild

import (
	"fmt"
	"math"
)

// Tree is a single-source distribution tree over the hosts of a RateMatrix.
type Tree struct {
	// Root is the index of the source.
	Root int
	// Parent[h] is the host that feeds h, -1 for the root and for hosts the
	// root cannot reach.
	Parent []int
	// Width[h] is h's bottleneck rate from the root in bytes per second:
	// +Inf for the root, 0 for unreachable hosts.
	Width []float64
	// Hops[h] is h's number of hops below the root, -1 when unreachable.
	Hops []int
}

// Children returns the hosts fed by h, in index order.
func (t *Tree) Children(h int) []int {
	var c []int
	for i, p := range t.Parent {
		if p == h {
			c = append(c, i)
		}
	}
	return c
}

// WidestPathTree builds the widest-path tree rooted at root (paper §VI-C):
// the tree in which every host's width, the smallest per-hop rate on its
// path from the root, is as large as it can be. It is Dijkstra's algorithm
// with "sum of delays" replaced by "minimum of rates": it repeatedly settles
// the unsettled host with the widest path. Among equally wide paths it takes
// the one with fewer hops, then the lower host index, so the result is
// deterministic. Link rates are m.Rate, so access caps bound each hop but
// are not shared between a parent's children.
func WidestPathTree(m *RateMatrix, root int) (*Tree, error) {
	n := m.Len()
	if root < 0 || root >= n {
		return nil, fmt.Errorf("widest-path tree: root %d out of range [0,%d)", root, n)
	}
	t := &Tree{Root: root, Parent: make([]int, n), Width: make([]float64, n), Hops: make([]int, n)}
	for i := range n {
		t.Parent[i], t.Hops[i] = -1, -1
	}
	t.Width[root], t.Hops[root] = math.Inf(1), 0
	done := make([]bool, n)
	for {
		u := -1
		for i := range n {
			if done[i] || t.Hops[i] < 0 {
				continue
			}
			if u < 0 || t.Width[i] > t.Width[u] || (t.Width[i] == t.Width[u] && t.Hops[i] < t.Hops[u]) {
				u = i
			}
		}
		if u < 0 {
			return t, nil
		}
		done[u] = true
		for v := range n {
			if done[v] {
				continue
			}
			r := m.Rate(u, v)
			if r <= 0 {
				continue
			}
			w := math.Min(t.Width[u], r)
			if t.Hops[v] < 0 || w > t.Width[v] || (w == t.Width[v] && t.Hops[u]+1 < t.Hops[v]) {
				t.Width[v], t.Parent[v], t.Hops[v] = w, u, t.Hops[u]+1
			}
		}
	}
}

// DirectRates returns the rate every host would get by direct unicast from
// root alone (m.Rate(root, h)); the root's own entry is +Inf.
func DirectRates(m *RateMatrix, root int) []float64 {
	r := make([]float64, m.Len())
	for h := range r {
		r[h] = m.Rate(root, h)
	}
	r[root] = math.Inf(1)
	return r
}
