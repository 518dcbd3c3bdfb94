package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/shaper"
	"github.com/romap2p/romap2p/protocol"
)

// sabotageTimeout bounds one swarm run.
var sabotageTimeout = 3 * time.Minute

// sabotage is what a saboteur corrupts among the symbols it sends.
type sabotage int

const (
	sabotageNone   sabotage = iota // an honest peer in the saboteur's place
	sabotageAll                    // every symbol
	sabotageSome                   // one symbol in a hundred
	sabotageRepair                 // repair symbols only
	sabotageRelay                  // every symbol, as a relay still fetching, once it has children
)

func (m sabotage) String() string {
	return [...]string{"honest", "all", "1%", "repair", "relay"}[m]
}

// saboteur corrupts symbol frames on the streams a node feeds to its
// children (the writer the node's shaper hook wraps), keeping every frame
// well-formed: the first payload byte of a chosen symbol is flipped. It
// exists in tests only.
type saboteur struct {
	mode sabotage
	t    int
	k    func(sbn uint8) uint32 // K of a block (nil until the content is known)

	mu      sync.Mutex
	count   int
	victims map[peer.ID]time.Time // first corrupt source symbol sent to each peer
	bad     int
}

func newSaboteur(mode sabotage, t int) *saboteur {
	return &saboteur{mode: mode, t: t, victims: make(map[peer.ID]time.Time)}
}

// corrupts decides for one symbol; source reports whether it is a source
// symbol.
func (sb *saboteur) corrupts(to peer.ID, sbn uint8, esi uint32) bool {
	source := sb.k != nil && esi < sb.k(sbn)
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.count++
	bad := false
	switch sb.mode {
	case sabotageAll, sabotageRelay:
		bad = true
	case sabotageSome:
		bad = sb.count%100 == 0
	case sabotageRepair:
		bad = sb.k != nil && !source
	}
	if bad {
		sb.bad++
		if _, ok := sb.victims[to]; !ok && source {
			sb.victims[to] = time.Now()
		}
	}
	return bad
}

// victimList returns the peers sent a corrupt source symbol, and when first.
func (sb *saboteur) victimList() map[peer.ID]time.Time {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	out := make(map[peer.ID]time.Time, len(sb.victims))
	for p, at := range sb.victims {
		out[p] = at
	}
	return out
}

// corruptWriter parses the frames written to one child and flips the first
// payload byte of the symbols the saboteur chooses. It copies what it is
// given (the writer hands it ring memory shared with other children).
type corruptWriter struct {
	sb  *saboteur
	to  peer.ID
	w   io.Writer
	buf []byte

	phase   int // 0 frame type, 1 symbol header, 2 symbol payload, 3 control length, 4 control payload
	hdr     [protocol.SymbolHeaderLen - 1]byte
	hdrN    int
	need    int
	first   bool
	corrupt bool
	length  uint64
	shift   uint
}

func (c *corruptWriter) Write(p []byte) (int, error) {
	out := append(c.buf[:0], p...)
	c.buf = out
	for i := 0; i < len(out); {
		switch c.phase {
		case 0:
			if out[i] == byte(protocol.FrameSymbol) {
				c.phase, c.hdrN = 1, 0
			} else {
				c.phase, c.length, c.shift = 3, 0, 0
			}
			i++
		case 1:
			c.hdr[c.hdrN] = out[i]
			c.hdrN++
			i++
			if c.hdrN == len(c.hdr) {
				v := binary.BigEndian.Uint32(c.hdr[:])
				c.corrupt = c.sb.corrupts(c.to, uint8(v>>24), v&protocol.MaxESI)
				c.phase, c.need, c.first = 2, c.sb.t, true
			}
		case 2:
			n := min(c.need, len(out)-i)
			if c.corrupt && c.first && n > 0 {
				out[i] ^= 0x5a
				c.first = false
			}
			c.need -= n
			i += n
			if c.need == 0 {
				c.phase = 0
			}
		case 3:
			b := out[i]
			i++
			c.length |= uint64(b&0x7f) << c.shift
			c.shift += 7
			if b&0x80 == 0 {
				c.phase, c.need = 4, int(c.length)
				if c.need == 0 {
					c.phase = 0
				}
			}
		case 4:
			n := min(c.need, len(out)-i)
			c.need -= n
			i += n
			if c.need == 0 {
				c.phase = 0
			}
		}
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// sabotageRun is one swarm: a source whose uplink is capped, the peer under
// test (saboteur or honest) and honest receivers that learn of both.
type sabotageRun struct {
	took    time.Duration
	blamed  int           // honest receivers that blamed the peer under test
	victims int           // honest receivers sent a corrupt source symbol
	slowest time.Duration // longest time from a victim's first corrupt source symbol to its blame
	last    time.Duration // latest blame, from the receivers' start
}

func runSabotage(t *testing.T, mode sabotage, relay, strict bool, stripes, receivers int, size int64) sabotageRun {
	t.Helper()
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, size, 20)
	nw := shaper.NewNetwork()
	var srcID peer.ID
	var mu sync.Mutex
	sb := newSaboteur(mode, DefaultSymbolSize)
	var sabID peer.ID
	shape := func(from, to peer.ID, w io.Writer) io.Writer {
		mu.Lock()
		isSrc, isSab := from == srcID, from == sabID
		mu.Unlock()
		if isSrc {
			return nw.Writer(from.String(), to.String(), w)
		}
		if isSab && mode != sabotageNone {
			return &corruptWriter{sb: sb, to: to, w: w}
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
	sb.mu.Lock()
	sb.k = func(sbn uint8) uint32 { return uint32(oti.BlockSymbols(int(sbn))) }
	sb.mu.Unlock()

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
	victims := sb.victimList()
	for i, n := range recv {
		if got := fileHash(t, filepath.Join(dir, "out", fmt.Sprint(i))); got != want {
			t.Errorf("%s: receiver %d: output differs", mode, i)
		}
		s := n.session(c)
		for _, bl := range s.blamed.list() {
			if bl.Peer != sabID || mode == sabotageNone {
				t.Errorf("%s: receiver %d blamed honest peer %s: %s", mode, i, bl.Peer, bl.Reason)
				continue
			}
			run.blamed++
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
	for _, n := range []*Node{src, sab} {
		if bl := n.session(c).blamed.list(); len(bl) > 0 {
			t.Errorf("%s: %s blamed %v", mode, n.host.ID(), bl)
		}
	}
	sb.mu.Lock()
	bad := sb.bad
	sb.mu.Unlock()
	t.Logf("%-6s %d stripes: %d receivers done in %v; %d corrupt symbols sent, %d victims of corrupt source symbols, %d receivers blamed the saboteur, slowest blame %v after the first corrupt source symbol, last blame %v after the start",
		mode, stripes, receivers, run.took.Round(time.Millisecond), bad, run.victims, run.blamed, run.slowest.Round(time.Millisecond), run.last.Round(time.Millisecond))
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
		mode    sabotage
		stripes int
		strict  bool
	}
	var cases []sabCase
	for _, stripes := range []int{8, 1} {
		for _, mode := range []sabotage{sabotageAll, sabotageSome, sabotageRepair, sabotageRelay} {
			cases = append(cases, sabCase{mode, stripes, true})
		}
	}
	// The default: relays forward the repair symbols they receive.
	for _, mode := range []sabotage{sabotageAll, sabotageSome, sabotageRepair, sabotageRelay} {
		cases = append(cases, sabCase{mode, 8, false})
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/stripes=%d/strict=%v", tc.mode, tc.stripes, tc.strict), func(t *testing.T) {
			relay := tc.mode == sabotageRelay
			bad := runSabotage(t, tc.mode, relay, tc.strict, tc.stripes, receivers, size)
			honest := runSabotage(t, sabotageNone, relay, tc.strict, tc.stripes, receivers, size)
			t.Logf("%s, %d stripes, strict repair %v: %v with the saboteur, %v with an honest peer in its place (%.2fx)",
				tc.mode, tc.stripes, tc.strict, bad.took.Round(time.Millisecond), honest.took.Round(time.Millisecond), bad.took.Seconds()/honest.took.Seconds())
		})
	}
}
