package treebuild

import (
	"fmt"
	"math"
)

// MaxFlow returns the largest rate at which dst can receive from src when
// every host may relay and a receiver may take data from several upstreams
// at once: the maximum flow over the pair rates, with each host's uplink cap
// shared by all of its outgoing pairs and its downlink cap by all of its
// incoming ones. With a rateless code this rate is achievable by every
// receiver at once up to the smallest of their max-flows.
func MaxFlow(m *RateMatrix, src, dst int) float64 {
	if src == dst {
		return math.Inf(1)
	}
	return newFlowNet(m).maxFlow(src, dst)
}

// Bounds is the lower bound on the time any scheme needs to deliver a file
// to every receiver, and the three terms it is the largest of.
type Bounds struct {
	// Seconds is the bound: the largest of the three terms.
	Seconds float64
	// Source is size / source egress: the source must send every byte once.
	Source float64
	// Aggregate is size x receivers / the sum of all hosts' egress: every
	// receiver needs every byte, and only uplinks can supply them.
	Aggregate float64
	// Flow is size / the smallest receiver max-flow (see MaxFlow).
	Flow float64
	// Slowest is the receiver whose max-flow sets Flow.
	Slowest int
}

// Bound computes the lower bound on delivering size bytes from src to every
// other host of m. A host's egress is its uplink cap, or, without one, the
// sum of its pair rates.
func Bound(m *RateMatrix, src int, size float64) (Bounds, error) {
	n := m.Len()
	if src < 0 || src >= n {
		return Bounds{}, fmt.Errorf("bound: source %d out of range [0,%d)", src, n)
	}
	if n < 2 {
		return Bounds{}, fmt.Errorf("bound: no receiver besides the source")
	}
	egress := func(h int) float64 {
		var sum float64
		for j := range n {
			sum += m.Rate(h, j)
		}
		return math.Min(sum, m.Uplink(h))
	}
	var total float64
	for h := range n {
		total += egress(h)
	}
	b := Bounds{
		Source:    size / egress(src),
		Aggregate: size * float64(n-1) / total,
		Slowest:   -1,
	}
	net := newFlowNet(m)
	slowest := math.Inf(1)
	for h := range n {
		if h == src {
			continue
		}
		if f := net.maxFlow(src, h); f < slowest || b.Slowest < 0 {
			slowest, b.Slowest = f, h
		}
	}
	b.Flow = size / slowest
	b.Seconds = math.Max(b.Source, math.Max(b.Aggregate, b.Flow))
	return b, nil
}

// flowNet is the split-node network for MaxFlow: host h becomes a core node
// h, an uplink node n+h (core -> uplink, capacity = uplink cap) and a
// downlink node 2n+h (downlink -> core, capacity = downlink cap); each
// measured pair is an edge from the sender's uplink node to the receiver's
// downlink node.
type flowNet struct {
	n     int
	head  []int // first edge of each node, -1 for none
	to    []int
	next  []int
	cap0  []float64 // original capacity
	flow  []float64
	level []int
	iter  []int
}

func newFlowNet(m *RateMatrix) *flowNet {
	n := m.Len()
	g := &flowNet{n: n, head: make([]int, 3*n), level: make([]int, 3*n), iter: make([]int, 3*n)}
	for i := range g.head {
		g.head[i] = -1
	}
	for h := range n {
		g.add(h, n+h, m.Uplink(h))
		g.add(2*n+h, h, m.Downlink(h))
		for v := range n {
			if r := m.Rate(h, v); r > 0 {
				g.add(n+h, 2*n+v, r)
			}
		}
	}
	return g
}

func (g *flowNet) add(u, v int, c float64) {
	g.to = append(g.to, v, u)
	g.cap0 = append(g.cap0, c, 0)
	g.next = append(g.next, g.head[u], g.head[v])
	g.head[u] = len(g.to) - 2
	g.head[v] = len(g.to) - 1
}

// eps is the residual capacity (bytes/s) below which an edge counts as full.
const eps = 1e-6

// maxFlow runs Dinic's algorithm from core node s to core node t.
func (g *flowNet) maxFlow(s, t int) float64 {
	g.flow = make([]float64, len(g.to))
	var total float64
	for g.bfs(s, t) {
		copy(g.iter, g.head)
		for {
			f := g.dfs(s, t, math.Inf(1))
			if f <= eps {
				break
			}
			total += f
		}
	}
	return total
}

func (g *flowNet) residual(e int) float64 { return g.cap0[e] - g.flow[e] }

func (g *flowNet) bfs(s, t int) bool {
	for i := range g.level {
		g.level[i] = -1
	}
	g.level[s] = 0
	queue := []int{s}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for e := g.head[u]; e >= 0; e = g.next[e] {
			if v := g.to[e]; g.level[v] < 0 && g.residual(e) > eps {
				g.level[v] = g.level[u] + 1
				queue = append(queue, v)
			}
		}
	}
	return g.level[t] >= 0
}

func (g *flowNet) dfs(u, t int, limit float64) float64 {
	if u == t {
		return limit
	}
	for ; g.iter[u] >= 0; g.iter[u] = g.next[g.iter[u]] {
		e := g.iter[u]
		v := g.to[e]
		if g.level[v] != g.level[u]+1 || g.residual(e) <= eps {
			continue
		}
		if f := g.dfs(v, t, math.Min(limit, g.residual(e))); f > eps {
			g.flow[e] += f
			g.flow[e^1] -= f
			return f
		}
	}
	return 0
}
