package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

// A node on an embedder's host never starts a DHT of its own: it needs
// the embedder's routing or an explicit WithoutRouting.
func TestWithHostNeedsRouting(t *testing.T) {
	h, err := NewHost(ListenAddrs("/ip4/127.0.0.1/tcp/0"), Metrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := New(context.Background(), WithHost(h)); !errors.Is(err, ErrNoRouting) {
		t.Fatalf("WithHost alone: got %v, want ErrNoRouting", err)
	}
	if _, err := New(context.Background(), WithHost(h), WithoutRouting(), WithHostOptions(StreamWindow(1<<20))); err == nil {
		t.Fatal("WithHostOptions with WithHost accepted")
	}
	n, err := New(context.Background(), WithHost(h), WithoutRouting())
	if err != nil {
		t.Fatal(err)
	}
	if n.cfg.stripes != DefaultStripes {
		t.Errorf("default stripes %d, want %d", n.cfg.stripes, DefaultStripes)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if len(h.Network().ListenAddresses()) == 0 {
		t.Error("closing the node closed the embedder's host")
	}
}

// Get keeps asking for a manifest nobody has until its context's deadline,
// also when that is beyond Tuning.ManifestPatience.
func TestGetFollowsContextDeadline(t *testing.T) {
	tu := DefaultTuning()
	tu.ManifestPatience = 200 * time.Millisecond
	src := newTestNode(t)
	dst := newTestNode(t, WithTuning(tu))
	absent := protocol.ManifestCID([]byte("content nobody has"))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := dst.Get(ctx, absent, filepath.Join(t.TempDir(), "out"), WithPeers(src.AddrInfo()))
	took := time.Since(start)
	if err == nil {
		t.Fatal("absent content downloaded")
	}
	if took < time.Second {
		t.Fatalf("gave up after %v with a context of 1.5 s (patience 200 ms): %v", took, err)
	}
	// Without a deadline the patience applies.
	start = time.Now()
	err = dst.Get(context.Background(), absent, filepath.Join(t.TempDir(), "out"), WithPeers(src.AddrInfo()))
	if !errors.Is(err, ErrNoPeers) || time.Since(start) > 5*time.Second {
		t.Fatalf("without a deadline: %v after %v, want ErrNoPeers after about 200 ms", err, time.Since(start))
	}
}

// AddReader serves bytes from a stream; GetTo streams them out in order,
// with the events of the download from the lookup to the end.
func TestAddReaderGetToEvents(t *testing.T) {
	data := make([]byte, 5<<20+1234)
	rng := rand.New(rand.NewPCG(7, 9))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	src := newTestNode(t, WithStripes(2))
	c, err := src.AddReader(context.Background(), bytes.NewReader(data), Name("stream.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes added from a file give the same CID.
	path := filepath.Join(t.TempDir(), "stream.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	other := newTestNode(t)
	c2, err := other.Add(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Equals(c) {
		t.Fatalf("AddReader CID %s, Add CID %s", c, c2)
	}
	dst := newTestNode(t, WithStripes(2))
	events := make(chan Event, 1024)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dst.GetTo(ctx, c, &out, WithPeers(src.AddrInfo()), WithEvents(events)); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(out.Bytes()) != sha256.Sum256(data) {
		t.Fatalf("GetTo wrote %d bytes that differ from the %d added", out.Len(), len(data))
	}
	kinds := map[EventKind]int{}
	var order []EventKind
	blocks := map[int]bool{}
	for len(events) > 0 {
		e := <-events
		kinds[e.Kind]++
		if len(order) == 0 || order[len(order)-1] != e.Kind {
			order = append(order, e.Kind)
		}
		if e.Kind == EventBlock {
			blocks[e.Block] = true
		}
		if e.Kind == EventAsked && e.Peer != src.host.ID() {
			t.Errorf("asked %s, only %s was named", e.Peer, src.host.ID())
		}
		if e.Kind == EventDone && e.Err != nil {
			t.Errorf("done with %v", e.Err)
		}
	}
	p, _ := dst.Progress(c)
	if kinds[EventAsked] == 0 || kinds[EventManifest] != 1 || kinds[EventParent] == 0 || kinds[EventDone] != 1 || len(blocks) != p.Blocks {
		t.Fatalf("events %v (blocks %d of %d), order %v", kinds, len(blocks), p.Blocks, order)
	}
	if order[0] != EventAsked || order[len(order)-1] != EventDone {
		t.Errorf("events in order %v", order)
	}
	// The temporary copy goes with the session.
	dir := filepath.Dir(dst.session(c).fetch.out)
	dst.Drop(c)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary download %s left behind: %v", dir, err)
	}
}

// A writer that fails ends the download with its error.
func TestGetWriterError(t *testing.T) {
	data := make([]byte, 3<<20)
	src := newTestNode(t)
	c, err := src.AddReaderAt(context.Background(), bytes.NewReader(data), int64(len(data)), Anonymous())
	if err != nil {
		t.Fatal(err)
	}
	dst := newTestNode(t)
	broken := errors.New("pipe closed")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = dst.Get(ctx, c, filepath.Join(t.TempDir(), "out"), WithPeers(src.AddrInfo()), WithWriter(failWriter{broken}))
	if !errors.Is(err, broken) {
		t.Fatalf("got %v, want the writer's error", err)
	}
	if _, ok := dst.Progress(c); ok {
		t.Error("the session outlived its writer's error")
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

var _ io.Writer = failWriter{}
