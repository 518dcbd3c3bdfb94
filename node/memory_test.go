package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// serviceMemory reads the memory romap2p's service scope holds on n's host.
func serviceMemory(t *testing.T, n *Node) int64 {
	t.Helper()
	var mem int64
	err := n.host.Network().ResourceManager().ViewService(ServiceName, func(s network.ServiceScope) error {
		mem = s.Stat().Memory
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// A session's buffers are accounted in the resource manager: a download
// under tight limits completes with its symbols on disk, and what it held
// is given back when it ends.
func TestSessionMemoryInResourceManager(t *testing.T) {
	dir := t.TempDir()
	size := int64(80 << 20)
	path, want := writeRandomFile(t, dir, size, 5)
	src := newTestNode(t)
	c, err := src.Add(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Peer memory 16 MiB gives the service 64 MiB; the download may keep
	// 96 MiB of symbols in memory by its own budget.
	dst := newTestNode(t, WithHostOptions(ListenAddrs("/ip4/127.0.0.1/tcp/0"), PeerMemory(16<<20)), WithSpillMemory(96<<20))
	before := serviceMemory(t, dst)
	events := make(chan Event, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := filepath.Join(dir, "out")
	done := make(chan error, 1)
	go func() { done <- dst.Get(ctx, c, out, WithPeers(src.AddrInfo()), WithEvents(events)) }()
	peak := int64(0)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			break wait
		case <-tick.C:
			peak = max(peak, serviceMemory(t, dst))
		}
	}
	if got := fileHash(t, out); got != want {
		t.Fatal("output differs from the source")
	}
	if peak-before < defaultRingBytes {
		t.Errorf("the session held %d bytes in the service scope at most, less than its ring", peak-before)
	}
	if peak > 64<<20 {
		t.Errorf("service memory peaked at %d bytes, above its 64 MiB limit", peak)
	}
	dst.Drop(c)
	if after := serviceMemory(t, dst); after > before+1<<20 {
		t.Errorf("service memory %d bytes after the session ended, %d before", after, before)
	}
	t.Logf("service memory: %d MiB before, peak %d MiB, limit 64 MiB", before>>20, peak>>20)
}
