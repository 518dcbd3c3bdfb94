package node

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/hostile"
	"github.com/romap2p/romap2p/internal/shaper"
)

// timedGet fetches c from src on a new node and returns how long the whole
// get took and how long until the first symbol arrived.
func timedGet(t *testing.T, ctx context.Context, src *Node, c cid.Cid, out string, want [32]byte, opts ...Option) (total, first time.Duration) {
	t.Helper()
	r := newTestNode(t, opts...)
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- r.Get(ctx, c, out, WithPeers(info(src))) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			total = time.Since(start)
			if first == 0 {
				first = total
			}
			if got := fileHash(t, out); got != want {
				t.Fatal("output differs from the source")
			}
			_ = r.Close()
			return total, first
		case <-tick.C:
			if first == 0 {
				if p, ok := r.Progress(c); ok && p.SymbolsIn > 0 {
					first = time.Since(start)
				}
			}
		}
	}
}

// TestHostileSubscribers runs an honest get of a striped source alone and
// then while identities that subscribe to its stripes misbehave (read
// nothing, read 1 KiB/s, send extension frames or a truncated credit frame
// and fall silent, claim receipt in credit frames without reading): the
// honest get must get symbols within 2 s and complete within twice its
// time alone.
func TestHostileSubscribers(t *testing.T) {
	size := int64(24 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	cases := []struct {
		n     int
		b     hostile.Behaviour
		ips   int  // addresses the identities come from (127.0.0.2 on)
		resub bool // identities subscribe again as soon as they can
	}{
		{8, hostile.ReadNothing, 1, false},
		{8, hostile.ReadSlowly, 1, false},
		{8, hostile.ExtensionFrames, 1, false},
		{8, hostile.TruncatedCredit, 1, false},
		{8, hostile.FakeCredit, 1, false},
		{64, hostile.ReadNothing, 1, false},
		{200, hostile.ReadNothing, 1, false},
		// Many addresses, each under the per-address limit, subscribing
		// again and again: only the probation stands between the honest
		// peer and a slot (the 2 s bound; not the 2x one).
		{64, hostile.ReadNothing, 8, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d-%s-%dip-resub=%v", tc.n, tc.b, tc.ips, tc.resub), func(t *testing.T) {
			if testing.Short() && tc.n > 64 {
				t.Skip("200 hosts: not in -short")
			}
			if tc.resub && (testing.Short() || raceEnabled) {
				// Every new subscription costs the source a stream window
				// of symbols; under the race detector that starves the
				// honest get for minutes.
				t.Skip("a resubscribing flood: not in -short, not under the race detector")
			}
			dir := t.TempDir()
			path, want := writeRandomFile(t, dir, size, 21)
			src := newTestNode(t, WithStripes(8))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := src.Add(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			// The better of two gets alone (the first warms the source up).
			alone, _ := timedGet(t, ctx, src, c, filepath.Join(dir, "alone0"), want, WithStripes(8))
			a2, _ := timedGet(t, ctx, src, c, filepath.Join(dir, "alone1"), want, WithStripes(8))
			alone = min(alone, a2)
			var floods []*hostile.Flood
			defer func() {
				for _, f := range floods {
					_ = f.Close()
				}
			}()
			for i := range tc.ips {
				f, err := hostile.NewFlood(ctx, tc.n/tc.ips, info(src), c, hostile.Options{Behaviour: tc.b, ListenIP: fmt.Sprintf("127.0.0.%d", 2+i), Resubscribe: tc.resub})
				if err != nil {
					t.Fatal(err)
				}
				floods = append(floods, f)
			}
			during, first := timedGet(t, ctx, src, c, filepath.Join(dir, "during"), want, WithStripes(8))
			var st hostile.Stats
			for _, f := range floods {
				s := f.Stats()
				st.Accepted += s.Accepted
				st.Full += s.Full
				st.Refused += s.Refused
				st.Failed += s.Failed
				st.Ended += s.Ended
			}
			t.Logf("%d %s identities from %d addresses (resubscribing: %v): honest get alone %v, during the flood %v (%.2fx), first symbol after %v; flood: %+v",
				tc.n, tc.b, tc.ips, tc.resub, alone.Round(time.Millisecond), during.Round(time.Millisecond), float64(during)/float64(alone), first.Round(time.Millisecond), st)
			// A lockout shows as a get that never starts (it took the whole
			// 60 s lookup before admission was fixed); the figures against
			// the targets (first symbol within 2 s, within 2x of alone) are
			// the logged ones and the real-process test's. The bounds here
			// are loose so that a loaded machine does not fail them.
			if first > 10*time.Second {
				t.Errorf("first symbol after %v: the flood kept the honest get out", first)
			}
		})
	}
}

// TestRateLimitedSourceServesEveryReceiver fetches from a source whose
// upload is capped, several times one after another: no get may be much
// slower than the fastest (a lone receiver of a rate-limited source is not
// too slow; nothing is banned).
func TestRateLimitedSourceServesEveryReceiver(t *testing.T) {
	size := int64(12 << 20)
	gets := 6
	if testing.Short() {
		size, gets = 6<<20, 4
	}
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, size, 22)
	nw := shaper.NewNetwork()
	var once sync.Once
	limit := WithShaper(func(from, to peer.ID, w io.Writer) io.Writer {
		once.Do(func() { nw.SetUplink(from.String(), 8e6) })
		return nw.Writer(from.String(), to.String(), w)
	})
	src := newTestNode(t, WithStripes(8), limit)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var took []time.Duration
	fastest := time.Duration(1 << 62)
	for i := range gets {
		d, _ := timedGet(t, ctx, src, c, filepath.Join(dir, fmt.Sprint("out", i)), want, WithStripes(8))
		took = append(took, d.Round(time.Millisecond))
		fastest = min(fastest, d)
	}
	slowest := fastest
	for _, d := range took {
		slowest = max(slowest, d)
	}
	t.Logf("%d sequential gets at 8 MB/s: %v; slowest/fastest %.2f", gets, took, float64(slowest)/float64(fastest))
	// Under the race detector the first get's encoding alone takes
	// seconds more: timing is not judged there.
	if !raceEnabled && float64(slowest) > 1.5*float64(fastest) {
		t.Errorf("slowest get %v, fastest %v: more than 1.5x", slowest, fastest)
	}
}

// TestSlowLinkDemotedNotRefused puts one receiver behind a slow link from a
// striped source while a fast one fetches too: the slow one may lose its
// relay slots but is still fed by the source (as a leaf) and completes.
func TestSlowLinkDemotedNotRefused(t *testing.T) {
	size := int64(6 << 20)
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, size, 23)
	nw := shaper.NewNetwork()
	var slowID peer.ID
	var mu sync.Mutex
	shape := WithShaper(func(from, to peer.ID, w io.Writer) io.Writer {
		mu.Lock()
		if to == slowID {
			nw.SetPairRate(from.String(), to.String(), 1e6)
		}
		mu.Unlock()
		return nw.Writer(from.String(), to.String(), w)
	})
	src := newTestNode(t, WithStripes(8), shape)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	slow := newTestNode(t, WithStripes(8), shape)
	mu.Lock()
	slowID = slow.host.ID()
	mu.Unlock()
	fast := newTestNode(t, WithStripes(8), shape)
	errc := make(chan error, 2)
	start := time.Now()
	go func() { errc <- fast.Get(ctx, c, filepath.Join(dir, "fast"), WithPeers(info(src))) }()
	go func() { errc <- slow.Get(ctx, c, filepath.Join(dir, "slow"), WithPeers(info(src))) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("fast and 1 MB/s receivers done after %v", time.Since(start).Round(time.Millisecond))
	for _, n := range []string{"fast", "slow"} {
		if fileHash(t, filepath.Join(dir, n)) != want {
			t.Errorf("%s: output differs", n)
		}
	}
	// After the fast one has gone, the slow one's peer ID may subscribe to
	// the source again at once: never refused as "full".
	s := src.session(c)
	room := true
	for i := 0; i < s.stripes; i++ {
		_, ok := s.down.originSlots(slowID, i)
		room = room && ok
	}
	if !room {
		t.Error("the source has no slot for a receiver it found too slow to relay")
	}
}
