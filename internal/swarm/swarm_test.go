package swarm

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/romap2p/romap2p/treebuild"
)

// smallMatrix is a four-host swarm in which the chain S -> A -> B is wider
// than the direct path S -> B, and C is best fed by S directly.
const smallMatrix = `# access S 200
receiver\sender	S	A	B	C
A	80	-	40	40
B	20	80	-	40
C	60	30	30	-
`

func parseSmall(t *testing.T) *treebuild.RateMatrix {
	t.Helper()
	m, err := treebuild.ParseMatrix(strings.NewReader(smallMatrix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTableI(t *testing.T) {
	m, err := TableI()
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 9 {
		t.Fatalf("table I has %d hosts, want 9", m.Len())
	}
	bu, _ := m.Index("BU")
	gt, _ := m.Index("GT")
	if r, ok := m.PairRate(bu, gt); !ok || math.Abs(treebuild.Mbit(r)-53.9) > 1e-9 {
		t.Errorf("BU->GT = %v Mbit/s, want 53.9", treebuild.Mbit(r))
	}
	if _, ok := m.Index(TableISource); !ok {
		t.Errorf("table I lacks its source %s", TableISource)
	}
}

func TestUniform(t *testing.T) {
	m, err := Uniform("src", 12, treebuild.FromMbit(50))
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 13 || m.Name(1) != "peer01" || m.Name(12) != "peer12" {
		t.Fatalf("hosts %v", m.Hosts())
	}
	if r := m.Rate(3, 7); r != treebuild.FromMbit(50) {
		t.Errorf("rate %v", r)
	}
	if _, err := Uniform("src", 0, 1); err == nil {
		t.Error("no receivers accepted")
	}
}

func TestDefaultCaps(t *testing.T) {
	m := parseSmall(t)
	c, err := withDefaultCaps(m, 1e6, 2e6)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := c.Index("S")
	a, _ := c.Index("A")
	if got := c.Uplink(s); got != treebuild.FromMbit(200) {
		t.Errorf("S keeps its own uplink: got %v", got)
	}
	if c.Uplink(a) != 1e6 || c.Downlink(a) != 2e6 {
		t.Errorf("A's caps %v/%v, want defaults", c.Uplink(a), c.Downlink(a))
	}
	// Unmeasured pairs stay unmeasured and measured ones keep their rate.
	if r, ok := c.PairRate(a, s); ok {
		t.Errorf("unmeasured pair A->S became %v", r)
	}
	if r, _ := c.PairRate(s, a); r != treebuild.FromMbit(80) {
		t.Errorf("S->A = %v", r)
	}
}

func TestConfigErrors(t *testing.T) {
	m := parseSmall(t)
	bad := []Config{
		{Source: "S", Size: 1},
		{Matrix: m, Source: "X", Size: 1},
		{Matrix: m, Source: "S", Size: 0},
		{Matrix: m, Source: "S", Size: 1, Parents: map[string]string{"A": "A"}},
		{Matrix: m, Source: "S", Size: 1, Parents: map[string]string{"S": "A"}},
		{Matrix: m, Source: "S", Size: 1, JoinAt: map[string]time.Duration{"Z": 0}},
	}
	for i, cfg := range bad {
		if _, err := Start(context.Background(), cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
}

// TestSmallSwarm runs four hosts with rates of 20-80 Mbit/s, the receivers
// choosing their parents themselves, and checks every output and the
// result's fields.
func TestSmallSwarm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ticks atomic.Int32
	var sawDone atomic.Bool
	cfg := Config{
		Matrix:   parseSmall(t),
		Source:   "S",
		Size:     4 << 20,
		Uplink:   treebuild.FromMbit(100),
		Downlink: treebuild.FromMbit(100),
		Stagger:  200 * time.Millisecond,
		Dir:      t.TempDir(),
		Seed:     3,
	}
	res, err := Run(ctx, cfg, OnTick(func(s Snapshot) {
		ticks.Add(1)
		if len(s.Peers) != 3 {
			t.Errorf("snapshot has %d peers", len(s.Peers))
		}
		all := true
		for _, p := range s.Peers {
			if p.Progress < 0 || p.Progress > 1 {
				t.Errorf("%s: progress %v", p.Name, p.Progress)
			}
			all = all && p.Done
		}
		if all {
			sawDone.Store(true)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if ticks.Load() == 0 || !sawDone.Load() {
		t.Errorf("ticks %d, final snapshot seen %v", ticks.Load(), sawDone.Load())
	}
	if res.Source != "S" || res.Size != 4<<20 || res.Stripes != 1 || len(res.Peers) != 3 {
		t.Fatalf("result header %+v", res)
	}
	if res.BoundS <= 0 || res.TotalS <= 0 {
		t.Errorf("bound %v s, total %v s", res.BoundS, res.TotalS)
	}
	want := map[string]struct{ width, direct float64 }{
		"A": {80, 80},
		"B": {80, 20}, // S -> A -> B
		"C": {60, 60},
	}
	for _, p := range res.Peers {
		if !p.OK {
			t.Errorf("%s: not ok: %s", p.Name, p.Err)
			continue
		}
		w := want[p.Name]
		if math.Abs(p.WidthBps-w.width*1e6) > 1 || math.Abs(p.DirectBps-w.direct*1e6) > 1 {
			t.Errorf("%s: width %v direct %v, want %v %v Mbit/s", p.Name, p.WidthBps/1e6, p.DirectBps/1e6, w.width, w.direct)
		}
		if p.CompletionS <= 0 || p.GoodputBps <= 0 {
			t.Errorf("%s: completion %v s, goodput %v", p.Name, p.CompletionS, p.GoodputBps)
		}
		// The emulated links cap every receiver: nobody can beat its
		// max-flow by much (the buckets' initial bursts aside).
		if p.GoodputBps > 1.3*p.MaxFlowBps {
			t.Errorf("%s: goodput %.1f Mbit/s above max-flow %.1f", p.Name, p.GoodputBps/1e6, p.MaxFlowBps/1e6)
		}
		if p.SymbolsNeeded == 0 || p.SymbolsIn < p.SymbolsNeeded {
			t.Errorf("%s: symbols in %d, needed %d", p.Name, p.SymbolsIn, p.SymbolsNeeded)
		}
		if p.JoinS+p.CompletionS > res.TotalS+1e-6 {
			t.Errorf("%s: done at %v s after total %v s", p.Name, p.JoinS+p.CompletionS, res.TotalS)
		}
		if p.Parent == "" || p.UpstreamCount != len(p.Upstreams) {
			t.Errorf("%s: parent %q upstreams %v (%d)", p.Name, p.Parent, p.Upstreams, p.UpstreamCount)
		}
		t.Logf("%s: parent %s upstreams %v width %.1f goodput %.1f direct %.1f Mbit/s, %.2f s, uploaded %d, symbols %d/%d",
			p.Name, p.Parent, p.Upstreams, p.WidthBps/1e6, p.GoodputBps/1e6, p.DirectBps/1e6, p.CompletionS, p.UploadedBytes, p.SymbolsIn, p.SymbolsNeeded)
	}
	if res.SourceUploadedBytes < res.Size {
		t.Errorf("source uploaded %d bytes, less than the file", res.SourceUploadedBytes)
	}
	t.Logf("bound %.2f s, total %.2f s", res.BoundS, res.TotalS)
}

// TestKillRelay starts a swarm in which B is best fed through A, kills A
// while B is still fetching, and checks that B still gets a verified file
// (it must fail over to the source) and that A is reported killed.
func TestKillRelay(t *testing.T) {
	m, err := treebuild.ParseMatrix(strings.NewReader("receiver\\sender\tS\tA\tB\nA\t24\t-\t24\nB\t10\t24\t-\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{Matrix: m, Source: "S", Size: 6 << 20, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Node("A") == nil || s.Node("nobody") != nil || !s.CID().Defined() {
		t.Fatal("Node or CID accessors broken")
	}
	if err := s.Kill("nobody"); err == nil {
		t.Error("killing an unknown host succeeded")
	}
	var atKill PeerState
	for {
		b := s.Snapshot().Peers[1]
		if b.Name != "B" {
			t.Fatalf("snapshot order: %+v", s.Snapshot().Peers)
		}
		if b.Done {
			t.Fatalf("B finished before A could be killed: %+v", b)
		}
		if (b.Parent == "A" && b.Progress > 0.1) || b.Progress > 0.4 {
			atKill = b
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Kill("A"); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill("A"); err != nil {
		t.Errorf("second kill: %v", err)
	}
	t.Logf("killed A while B was at %.0f%% under %s", 100*atKill.Progress, atKill.Parent)
	res, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	a, b := res.Peers[0], res.Peers[1]
	if !a.Killed {
		t.Errorf("A not reported killed: %+v", a)
	}
	if !b.OK || b.Killed {
		t.Fatalf("B did not recover: %+v", b)
	}
	if !slices.Contains(b.Upstreams, "S") {
		t.Errorf("B's upstreams %v lack the source it must have failed over to", b.Upstreams)
	}
	t.Logf("B: parent %s upstreams %v, %.2f s", b.Parent, b.Upstreams, b.CompletionS)
}
