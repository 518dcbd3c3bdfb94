package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/hostile"
	"github.com/romap2p/romap2p/internal/shaper"
)

// sabotageTimeout bounds one swarm run.
var sabotageTimeout = 3 * time.Minute

// sabotageRun is one swarm: a source whose uplink is capped, the peer under
// test (saboteur or honest) and honest receivers that learn of both.
type sabotageRun struct {
	took    time.Duration
	blamed  int           // honest receivers that blamed the peer under test
	named   int           // of those blames, the ones naming the source symbol
	victims int           // honest receivers sent a corrupt source symbol
	slowest time.Duration // longest time from a victim's first corrupt source symbol to its blame
	last    time.Duration // latest blame, from the receivers' start
}

func runSabotage(t *testing.T, mode hostile.Sabotage, relay, strict bool, stripes, receivers int, size int64) sabotageRun {
	t.Helper()
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, size, 20)
	nw := shaper.NewNetwork()
	var srcID peer.ID
	var mu sync.Mutex
	sb := hostile.NewSaboteur(mode, DefaultSymbolSize)
	var sabID peer.ID
	shape := func(from, to peer.ID, w io.Writer) io.Writer {
		mu.Lock()
		isSrc, isSab := from == srcID, from == sabID
		mu.Unlock()
		if isSrc {
			return nw.Writer(from.String(), to.String(), w)
		}
		if isSab {
			return sb.Writer(to, w)
		}
		return w
	}
	tu := DefaultTuning()
	tu.StrictRepair = strict
	opts := []Option{WithStripes(stripes), WithShaper(shape), WithTuning(tu)}
	src := newTestNode(t, opts...)
	sab := newTestNode(t, opts...)
	mu.Lock()
	srcID, sabID = src.host.ID(), sab.host.ID()
	mu.Unlock()
	// 80 Mbit/s from the source, as on the testbed.
	nw.SetUplink(srcID.String(), 10e6)
	ctx, cancel := context.WithTimeout(context.Background(), sabotageTimeout)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	oti := src.session(c).oti
	sb.SetBlockSymbols(func(sbn uint8) uint32 { return uint32(oti.BlockSymbols(int(sbn))) })

	sabErr := make(chan error, 1)
	if relay {
		// A relay still fetching, with children of its own.
		go func() { sabErr <- sab.Get(ctx, c, filepath.Join(dir, "sab.out"), WithPeers(info(src))) }()
	} else {
		// A peer that holds the whole file and serves it.
		if err := sab.Get(ctx, c, filepath.Join(dir, "sab.out"), WithPeers(info(src))); err != nil {
			t.Fatal(err)
		}
		sabErr <- nil
	}
	recv := make([]*Node, receivers)
	for i := range recv {
		recv[i] = newTestNode(t, opts...)
	}
	start := time.Now()
	errc := make(chan error, len(recv))
	for i := range recv {
		go func() {
			errc <- recv[i].Get(ctx, c, filepath.Join(dir, "out", fmt.Sprint(i)), WithPeers(info(sab), info(src)))
		}()
	}
	for range recv {
		if err := <-errc; err != nil {
			t.Fatalf("%s, %d stripes: %v", mode, stripes, err)
		}
	}
	var run sabotageRun
	run.took = time.Since(start)
	if err := <-sabErr; err != nil {
		t.Errorf("the peer under test: %v", err)
	}
	victims, writes := sb.Victims(), sb.Record().Writes
	for i, n := range recv {
		if got := fileHash(t, filepath.Join(dir, "out", fmt.Sprint(i))); got != want {
			t.Errorf("%s: receiver %d: output differs", mode, i)
		}
		s := n.session(c)
		for _, bl := range s.blamed.list() {
			if bl.Peer != sabID || mode == hostile.Honest {
				t.Errorf("%s: receiver %d blamed honest peer %s: %s", mode, i, bl.Peer, bl.Reason)
				continue
			}
			run.blamed++
			if sym := bl.Symbol; sym != nil {
				run.named++
				// The blame names a source symbol the saboteur corrupted
				// for this receiver.
				w := writes[n.host.ID().String()]
				if sym.ESI >= uint32(oti.BlockSymbols(int(sym.Block))) {
					t.Errorf("%s: receiver %d blamed the saboteur for repair symbol %d/%d as a source symbol", mode, i, sym.Block, sym.ESI)
				} else if len(w) < hostile.MaxWrites && !slices.ContainsFunc(w, func(x hostile.SymbolWrite) bool { return x.Block == sym.Block && x.ESI == sym.ESI }) {
					t.Errorf("%s: receiver %d blamed the saboteur for symbol %d/%d, which it did not corrupt for it", mode, i, sym.Block, sym.ESI)
				}
			}
			run.last = max(run.last, bl.At.Sub(start))
			if at, ok := victims[n.host.ID()]; ok {
				run.slowest = max(run.slowest, bl.At.Sub(at))
			}
		}
		if _, ok := victims[n.host.ID()]; ok {
			run.victims++
			if !s.isBlamed(sabID) {
				t.Errorf("%s: receiver %d got corrupt source symbols and did not blame the sender", mode, i)
			}
		}
	}
	if mode == hostile.CorruptAll && run.victims > 0 && run.named == 0 {
		t.Errorf("%s: no blame named the corrupt source symbol that proved it", mode)
	}
	for _, n := range []*Node{src, sab} {
		if bl := n.session(c).blamed.list(); len(bl) > 0 {
			t.Errorf("%s: %s blamed %v", mode, n.host.ID(), bl)
		}
	}
	_, bad := sb.Counts()
	t.Logf("%-6s %d stripes: %d receivers done in %v; %d corrupt symbols sent, %d victims of corrupt source symbols, %d receivers blamed the saboteur (%d naming the symbol), slowest blame %v after the first corrupt source symbol, last blame %v after the start",
		mode, stripes, receivers, run.took.Round(time.Millisecond), bad, run.victims, run.blamed, run.named, run.slowest.Round(time.Millisecond), run.last.Round(time.Millisecond))
	return run
}

// TestSabotage runs a swarm with a saboteur, for each way it corrupts
// symbols, with 8 stripes and with 1, and the same swarm with an honest peer
// in its place: every honest receiver completes with a correct file, no
// honest peer is blamed, and every receiver sent a corrupt source symbol
// blames the saboteur. The times are logged side by side (a figure, not an
// assertion: the machine is shared).
func TestSabotage(t *testing.T) {
	if d := os.Getenv("ROMAP2P_SABOTAGE_TIMEOUT"); d != "" {
		if v, err := time.ParseDuration(d); err == nil {
			sabotageTimeout = v
		}
	}
	size := int64(16 << 20)
	receivers := 4
	if testing.Short() {
		size = 4 << 20
		receivers = 3
	}
	type sabCase struct {
		mode    hostile.Sabotage
		relay   bool
		stripes int
		strict  bool
	}
	var cases []sabCase
	modes := []sabCase{{mode: hostile.CorruptAll}, {mode: hostile.CorruptSome}, {mode: hostile.CorruptRepair}, {mode: hostile.CorruptAll, relay: true}}
	for _, stripes := range []int{8, 1} {
		for _, m := range modes {
			cases = append(cases, sabCase{m.mode, m.relay, stripes, true})
		}
	}
	// The default: relays forward the repair symbols they receive.
	for _, m := range modes {
		cases = append(cases, sabCase{m.mode, m.relay, 8, false})
	}
	for _, tc := range cases {
		name := tc.mode.String()
		if tc.relay {
			name = "relay-" + name
		}
		t.Run(fmt.Sprintf("%s/stripes=%d/strict=%v", name, tc.stripes, tc.strict), func(t *testing.T) {
			bad := runSabotage(t, tc.mode, tc.relay, tc.strict, tc.stripes, receivers, size)
			honest := runSabotage(t, hostile.Honest, tc.relay, tc.strict, tc.stripes, receivers, size)
			t.Logf("%s, %d stripes, strict repair %v: %v with the saboteur, %v with an honest peer in its place (%.2fx)",
				name, tc.stripes, tc.strict, bad.took.Round(time.Millisecond), honest.took.Round(time.Millisecond), bad.took.Seconds()/honest.took.Seconds())
		})
	}
}
