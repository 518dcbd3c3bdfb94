package node

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/shaper"
)

func TestSeedPolicyValidate(t *testing.T) {
	if err := DefaultSeedPolicy().Validate(); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	for _, p := range []SeedPolicy{{Ratio: -1}, {Time: -time.Second}, {Idle: -time.Second}} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

// TestSeedHandsOver: A fetches the file from S and seeds it; B, which knows
// only A, fetches from A at a shaped rate. When A's seeding time runs out it
// leaves, handing B over: B must have another parent within a second and
// complete with a correct file.
func TestSeedHandsOver(t *testing.T) {
	size := int64(8 << 20)
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, size, 21)
	nw := shaper.NewNetwork()
	names := map[peer.ID]string{}
	shape := WithShaper(func(from, to peer.ID, w io.Writer) io.Writer {
		return nw.Writer(names[from], names[to], w)
	})
	mk := func(name string) *Node {
		n := newTestNode(t, shape, WithStripes(2))
		names[n.host.ID()] = name
		return n
	}
	src, a, b := mk("S"), mk("A"), mk("B")
	// B takes 4 s to fetch the file from A alone, 8 s from S alone.
	nw.SetPairRate("A", "B", float64(size)/4)
	nw.SetPairRate("S", "B", float64(size)/8)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Get(ctx, c, filepath.Join(dir, "a"), WithPeers(info(src))); err != nil {
		t.Fatal(err)
	}
	if got := fileHash(t, filepath.Join(dir, "a")); got != want {
		t.Fatal("A: sha256 differs")
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Get(ctx, c, filepath.Join(dir, "b"), WithPeers(info(a))) }()
	// Wait until B takes symbols from A, then let A leave.
	for !takesFrom(b, c, a.host.ID()) {
		if ctx.Err() != nil {
			t.Fatal("B never received a symbol from A")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := a.Seed(ctx, c, SeedPolicy{Time: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	if res.Reason != "time" || res.Uploaded == 0 {
		t.Fatalf("seed ended with %+v", res)
	}
	if _, ok := a.Progress(c); ok {
		t.Fatal("A still has the session after leaving")
	}
	// Every stripe of B has a parent again at once.
	var moved time.Duration
	for moved == 0 {
		select {
		case err := <-errc:
			t.Fatalf("B finished (%v) before it was seen to move", err)
		default:
		}
		if p, ok := b.Progress(c); ok {
			have := map[int]bool{}
			for _, u := range p.Upstreams {
				if u.Peer != a.host.ID() && !u.Probe {
					have[u.Stripe] = true
				}
			}
			if len(have) == 2 {
				moved = time.Since(left)
			}
		}
		if time.Since(left) > 10*time.Second {
			t.Fatal("B had no parent in some stripe 10 s after A left")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("A seeded %v, uploaded %d bytes; B had a parent in every stripe %v after A left", res.Seeded.Round(time.Millisecond), res.Uploaded, moved.Round(time.Millisecond))
	if moved > time.Second {
		t.Errorf("B reattached %v after A left, want within 1 s", moved)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := fileHash(t, filepath.Join(dir, "b")); got != want {
		t.Fatal("B: sha256 differs")
	}
}

// TestSeedIdle: a seed that nobody takes symbols from leaves after its idle
// time, long before its time bound.
func TestSeedIdle(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeRandomFile(t, dir, 1<<20, 22)
	src, a := newTestNode(t), newTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Get(ctx, c, filepath.Join(dir, "a"), WithPeers(info(src))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := a.Seed(ctx, c, SeedPolicy{Ratio: 1, Time: time.Minute, Idle: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != "idle" || time.Since(start) > 5*time.Second {
		t.Fatalf("seed ended with %+v after %v", res, time.Since(start))
	}
	if _, err := a.Seed(ctx, c, DefaultSeedPolicy()); err == nil {
		t.Fatal("seeding content the node left did not fail")
	}
}

// takesFrom reports whether n receives new symbols of c from p.
func takesFrom(n *Node, c cid.Cid, p peer.ID) bool {
	pr, ok := n.Progress(c)
	if !ok {
		return false
	}
	for _, u := range pr.Upstreams {
		if u.Peer == p && u.Fresh > 0 && !u.Probe {
			return true
		}
	}
	return false
}
