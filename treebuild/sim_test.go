package treebuild

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The simulation below runs the Chooser's decisions for a swarm of peers
// over a rate matrix in discrete time. A peer under parent c receives
// min(width(c), its share of the link c->peer), where c's uplink cap (if
// any) is split max-min fairly among c's children. Probes take a probe
// window and measure exactly what the prober would get as c's child.

const simTick = 100 * time.Millisecond

type simMeas struct {
	goodput, width float64
	at             time.Time
}

type simProbe struct {
	target int
	done   time.Time
}

type simPeer struct {
	joinAt     time.Time
	joined     bool
	dead       bool // connection closes: children notice at once
	frozen     bool // alive but silent: children notice by stall
	parent     int
	lastSwitch time.Time
	switches   []time.Time
	lastSymbol time.Time
	nextProbe  time.Time
	meas       map[int]simMeas
	failed     map[int]time.Time
	probes     []simProbe
}

type swarm struct {
	t       *testing.T
	m       *RateMatrix
	ch      *Chooser
	src     int
	fanout  int
	peers   []*simPeer
	ids     []peer.ID
	start   time.Time
	now     time.Time
	width   []float64 // recomputed by update
	kids    [][]int
	share   []float64
	joinLog map[int]time.Duration // time from join to first parent
}

func newSwarm(t *testing.T, m *RateMatrix, src, fanout int, ch *Chooser) *swarm {
	s := &swarm{t: t, m: m, ch: ch, src: src, fanout: fanout, start: time.Unix(1_000_000, 0), joinLog: map[int]time.Duration{}}
	s.now = s.start
	for h := range m.Len() {
		s.ids = append(s.ids, peer.ID(m.Name(h)))
		s.peers = append(s.peers, &simPeer{parent: -1, meas: map[int]simMeas{}, failed: map[int]time.Time{}})
	}
	s.peers[src].joined = true
	return s
}

func (s *swarm) at(d time.Duration) time.Time { return s.start.Add(d) }

// serving reports whether h answers and forwards.
func (s *swarm) serving(h int) bool {
	p := s.peers[h]
	return p.joined && !p.dead && !p.frozen
}

// waterFill splits capacity max-min fairly among demands.
func waterFill(capacity float64, demand []float64) []float64 {
	out := make([]float64, len(demand))
	idx := make([]int, len(demand))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmpFloat(demand[a], demand[b]) })
	left := capacity
	for k, i := range idx {
		fair := left / float64(len(idx)-k)
		out[i] = math.Min(demand[i], fair)
		left -= out[i]
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// update recomputes every peer's width from the source down.
func (s *swarm) update() {
	n := s.m.Len()
	s.width = make([]float64, n)
	s.share = make([]float64, n)
	s.kids = make([][]int, n)
	for h, p := range s.peers {
		if p.parent >= 0 {
			s.kids[p.parent] = append(s.kids[p.parent], h)
		}
	}
	if !s.serving(s.src) {
		return
	}
	s.width[s.src] = math.Inf(1)
	queue := []int{s.src}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if !s.serving(u) && u != s.src {
			continue // a silent relay passes nothing on
		}
		demand := make([]float64, len(s.kids[u]))
		for i, c := range s.kids[u] {
			demand[i] = math.Min(s.width[u], s.m.Rate(u, c))
		}
		for i, sh := range waterFill(s.m.Uplink(u), demand) {
			c := s.kids[u][i]
			s.share[c], s.width[c] = sh, sh
			queue = append(queue, c)
		}
	}
}

// probeValue is what `me` would receive as c's child.
func (s *swarm) probeValue(c, me int) float64 {
	var demand []float64
	mine := -1
	for _, k := range s.kids[c] {
		if k == me {
			mine = len(demand)
		}
		demand = append(demand, math.Min(s.width[c], s.m.Rate(c, k)))
	}
	if mine < 0 {
		mine = len(demand)
		demand = append(demand, math.Min(s.width[c], s.m.Rate(c, me)))
	}
	return waterFill(s.m.Uplink(c), demand)[mine]
}

func (s *swarm) path(h int) []peer.ID {
	var p []peer.ID
	for c, n := h, 0; c >= 0 && n <= len(s.peers); c, n = s.peers[c].parent, n+1 {
		p = append(p, s.ids[c])
	}
	slices.Reverse(p)
	return p
}

// candidates is what `me` learns from status requests and its own probes.
func (s *swarm) candidates(me int) []Candidate {
	var out []Candidate
	for c := range s.peers {
		if c == me || !s.serving(c) {
			continue
		}
		path := s.path(c)
		var carried float64
		for _, k := range s.kids[c] {
			if k != me {
				carried += s.share[k]
			}
		}
		up := s.m.Uplink(c)
		if math.IsInf(up, 1) {
			up = 0
		}
		cand := Candidate{
			ID: s.ids[c], Width: s.width[c], Depth: len(path) - 1, Path: path,
			Children: len(s.kids[c]), MaxChildren: s.fanout, Uplink: up, Carried: carried,
			Failed: s.peers[me].failed[c],
		}
		if c == s.peers[me].parent {
			cand.Measured, cand.MeasuredAt, cand.MeasuredWidth = s.width[me], s.now, s.width[c]
		} else if ms, ok := s.peers[me].meas[c]; ok {
			cand.Measured, cand.MeasuredAt, cand.MeasuredWidth = ms.goodput, ms.at, ms.width
		}
		out = append(out, cand)
	}
	return out
}

func (s *swarm) hostOf(id peer.ID) int {
	h, _ := s.m.Index(string(id))
	return h
}

// attach moves me under the best admitting candidate, trying the next one
// when a parent refuses. current == "" means me has no working parent.
func (s *swarm) attach(me int, current peer.ID) bool {
	forced := current == ""
	p := s.peers[me]
	for range 4 {
		best, ok := s.ch.Reevaluate(s.ids[me], current, s.width[me], s.candidates(me), s.now, p.lastSwitch)
		if !ok {
			return false
		}
		c := s.hostOf(best.ID)
		req := AdmitRequest{Peer: s.ids[me], OnPath: s.ids[c] == s.ids[me] || OnPath(s.path(c), s.ids[me])}
		switch Admit(req, AdmitState{Limit: s.fanout}, make([]ChildStat, len(s.kids[c]))).Refusal {
		case Accepted:
			if p.parent >= 0 && !forced {
				p.switches = append(p.switches, s.now)
				s.t.Logf("%v: %s moves from %s (%.1f) to %s (%.1f)", s.now.Sub(s.start), s.m.Name(me),
					s.m.Name(p.parent), Mbit(s.width[me]), s.m.Name(c), Mbit(best.Score))
			}
			// The dwell counts from the last switch made on a measurement.
			p.parent, p.lastSwitch = c, time.Time{}
			if !forced {
				p.lastSwitch = s.now
			}
			s.update()
			s.checkNoLoop()
			return true
		default:
			p.failed[c] = s.now // refused: try the next candidate
		}
	}
	return false
}

func (s *swarm) checkNoLoop() {
	s.t.Helper()
	for h := range s.peers {
		seen := map[int]bool{}
		for c := h; c >= 0; c = s.peers[c].parent {
			if seen[c] {
				s.t.Fatalf("%v: loop through %s: %v", s.now.Sub(s.start), s.m.Name(h), s.path(h))
			}
			seen[c] = true
		}
	}
}

// step advances the swarm by one tick.
func (s *swarm) step() {
	s.now = s.now.Add(simTick)
	s.update()
	for me, p := range s.peers {
		if me == s.src || p.dead || p.frozen {
			continue
		}
		if !p.joined {
			if s.now.Before(p.joinAt) {
				continue
			}
			p.joined, p.lastSymbol, p.nextProbe = true, s.now, s.now
			s.update()
		}
		if p.parent >= 0 {
			par := s.peers[p.parent]
			switch {
			case par.dead, s.ch.Stalled(p.lastSymbol, s.now):
				p.failed[p.parent] = s.now
				p.switches = append(p.switches, s.now)
				p.parent = -1
				s.update()
			}
		}
		if p.parent < 0 {
			if s.attach(me, "") {
				if _, seen := s.joinLog[me]; !seen {
					s.joinLog[me] = s.now.Sub(p.joinAt)
				}
			}
		}
		if s.width[me] > 0 {
			p.lastSymbol = s.now
		}
		// Finished probes report what me would get under the target now.
		kept, measured := p.probes[:0], false
		for _, pr := range p.probes {
			if s.now.Before(pr.done) {
				kept = append(kept, pr)
				continue
			}
			if s.serving(pr.target) {
				p.meas[pr.target] = simMeas{goodput: s.probeValue(pr.target, me), width: s.width[pr.target], at: s.now}
				measured = true
			} else {
				p.failed[pr.target] = s.now
			}
		}
		p.probes = kept
		if p.parent >= 0 && measured {
			s.attach(me, s.ids[p.parent])
		}
		if p.parent < 0 || s.now.Before(p.nextProbe) {
			continue
		}
		p.nextProbe = p.nextProbe.Add(s.ch.ProbeInterval())
		cur := s.ids[p.parent]
		for _, id := range s.ch.NextProbe(s.ids[me], cur, s.width[me], s.candidates(me), s.now) {
			p.probes = append(p.probes, simProbe{target: s.hostOf(id), done: s.now.Add(s.ch.ProbeWindow())})
		}
		s.attach(me, cur)
	}
}

func (s *swarm) run(until time.Duration) {
	for s.now.Before(s.at(until)) {
		s.step()
	}
}

// lastSwitch returns the time of the last reparent of any peer (zero: none).
func (s *swarm) lastSwitch() time.Time {
	var last time.Time
	for _, p := range s.peers {
		for _, t := range p.switches {
			if t.After(last) {
				last = t
			}
		}
	}
	return last
}

// compare checks every live receiver against the widest-path tree of the
// live hosts and logs the table.
func (s *swarm) compare(minRatio float64) {
	s.t.Helper()
	ref := s.liveMatrix()
	tree, err := WidestPathTree(ref, s.src)
	if err != nil {
		s.t.Fatal(err)
	}
	direct := DirectRates(ref, s.src)
	s.t.Logf("t=%v  %-9s %-9s %9s %9s %9s %6s", s.now.Sub(s.start), "host", "parent", "width", "widest", "direct", "ratio")
	for h, p := range s.peers {
		if h == s.src || !s.serving(h) {
			continue
		}
		ratio := s.width[h] / tree.Width[h]
		par := "-"
		if p.parent >= 0 {
			par = s.m.Name(p.parent)
		}
		s.t.Logf("        %-9s %-9s %9.1f %9.1f %9.1f %6.2f", s.m.Name(h), par, Mbit(s.width[h]), Mbit(tree.Width[h]), Mbit(direct[h]), ratio)
		if ratio < minRatio {
			s.t.Errorf("%s: width %.1f Mbit/s is %.2f of the widest path %.1f", s.m.Name(h), Mbit(s.width[h]), ratio, Mbit(tree.Width[h]))
		}
	}
}

// liveMatrix is s.m without the rates of hosts that stopped serving.
func (s *swarm) liveMatrix() *RateMatrix {
	ref, _ := NewRateMatrix(s.m.Hosts()...)
	for u := range s.peers {
		for v := range s.peers {
			if r, ok := s.m.PairRate(u, v); ok && s.serving(u) && s.serving(v) {
				ref.SetRate(u, v, r)
			}
		}
	}
	return ref
}

func newTestChooser(t *testing.T) *Chooser {
	ch, err := NewChooser()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// table1Swarm joins the Table I receivers one per second, in table order,
// under source UW.
func table1Swarm(t *testing.T, fanout int) *swarm {
	m := loadTable1(t)
	s := newSwarm(t, m, idx(t, m, "UW"), fanout, newTestChooser(t))
	k := 0
	for h, p := range s.peers {
		if h != s.src {
			k++
			p.joinAt = s.at(time.Duration(k) * time.Second)
		}
	}
	return s
}

func TestSimConvergesToWidestPath(t *testing.T) {
	s := table1Swarm(t, 8)
	const lastJoin = 8 * time.Second
	s.run(120 * time.Second)
	for h, d := range s.joinLog {
		if d > 3*time.Second {
			t.Errorf("%s found a parent %v after joining", s.m.Name(h), d)
		}
	}
	settled := s.lastSwitch().Sub(s.start)
	t.Logf("last reparent at %v (last join at %v)", settled, lastJoin)
	if settled > lastJoin+20*time.Second {
		t.Errorf("tree settled %v after the last join, want <= 20 s", settled-lastJoin)
	}
	s.compare(0.85)
	for h, p := range s.peers {
		t.Logf("%s reparented at %v", s.m.Name(h), relTimes(s.start, p.switches))
	}
	// Once settled, nobody moves: run another two minutes.
	before := s.lastSwitch()
	s.run(240 * time.Second)
	if s.lastSwitch() != before {
		t.Errorf("reparent at %v after settling", s.lastSwitch().Sub(s.start))
	}
}

func relTimes(start time.Time, ts []time.Time) []time.Duration {
	var d []time.Duration
	for _, t := range ts {
		d = append(d, t.Sub(start))
	}
	return d
}

func TestSimFailover(t *testing.T) {
	for _, mode := range []string{"dies", "stalls"} {
		t.Run(mode, func(t *testing.T) {
			s := table1Swarm(t, 8)
			s.run(60 * time.Second)
			// Kill the relay with the most children.
			victim := -1
			for h := range s.peers {
				if h != s.src && (victim < 0 || len(s.kids[h]) > len(s.kids[victim])) {
					victim = h
				}
			}
			orphans := slices.Clone(s.kids[victim])
			if len(orphans) == 0 {
				t.Fatal("no relay with children")
			}
			if mode == "dies" {
				s.peers[victim].dead = true
			} else {
				s.peers[victim].frozen = true
			}
			failAt := s.now
			recovered := map[int]time.Duration{}
			for s.now.Before(failAt.Add(10 * time.Second)) {
				s.step()
				for _, o := range orphans {
					if _, ok := recovered[o]; !ok && s.width[o] > 0 && s.peers[o].parent != victim {
						recovered[o] = s.now.Sub(failAt)
					}
				}
			}
			for _, o := range orphans {
				d, ok := recovered[o]
				t.Logf("%s %s: %s back under %s after %v", s.m.Name(victim), mode, s.m.Name(o), s.m.Name(s.peers[o].parent), d)
				if !ok || d > 5*time.Second {
					t.Errorf("%s not recovered within 5 s (%v, %v)", s.m.Name(o), d, ok)
				}
			}
			s.run(120 * time.Second)
			s.compare(0.85)
		})
	}
}

func TestSimLateJoiner(t *testing.T) {
	s := table1Swarm(t, 8)
	bu := idx(t, s.m, "BU")
	s.peers[bu].joinAt = s.at(70 * time.Second)
	s.run(70*time.Second + 3*time.Second)
	if d, ok := s.joinLog[bu]; !ok || d > 3*time.Second {
		t.Fatalf("late joiner found a parent after %v (%v)", d, ok)
	}
	t.Logf("late joiner BU: parent %s after %v, width %.1f Mbit/s", s.m.Name(s.peers[bu].parent), s.joinLog[bu], Mbit(s.width[bu]))
	s.run(70*time.Second + 20*time.Second)
	s.compare(0.85)
}

// TestSimFanOutAndCaps: with 40 Mbit/s access links and at most 2 children
// per peer, uplinks are shared and parents fill up; the choices must still
// settle, respect the fan-out, never loop and leave nobody starved.
func TestSimFanOutAndCaps(t *testing.T) {
	s := table1Swarm(t, 2)
	for h := range s.m.Len() {
		s.m.SetUplink(h, FromMbit(40))
		s.m.SetDownlink(h, FromMbit(40))
	}
	s.run(120 * time.Second)
	for h := range s.peers {
		if len(s.kids[h]) > 2 {
			t.Errorf("%s feeds %d children, limit 2", s.m.Name(h), len(s.kids[h]))
		}
		if h != s.src && s.width[h] <= 0 {
			t.Errorf("%s starved", s.m.Name(h))
		}
	}
	before := s.lastSwitch()
	t.Logf("last reparent at %v", before.Sub(s.start))
	s.compare(0.5)
	s.run(300 * time.Second)
	if s.lastSwitch() != before {
		t.Errorf("reparent at %v after settling", s.lastSwitch().Sub(s.start))
	}
	for h, p := range s.peers {
		for i := 1; i < len(p.switches); i++ {
			if gap := p.switches[i].Sub(p.switches[i-1]); gap < 5*time.Second {
				t.Logf("%s switched twice within %v", s.m.Name(h), gap)
			}
		}
	}
}
