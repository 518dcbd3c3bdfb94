package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// TestStatusCacheSharesAnswers: eight stripes asking one peer at once make
// one query; an answer is reused while fresh and asked again once stale; a
// failure is remembered like an answer; a waiter whose context ends stops
// waiting.
func TestStatusCacheSharesAnswers(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	fail := atomic.Bool{}
	c := newStatusCache(50*time.Millisecond, func(ctx context.Context, ai peer.AddrInfo) (*protocol.Status, error) {
		calls.Add(1)
		<-release
		if fail.Load() {
			return nil, errors.New("unreachable")
		}
		return &protocol.Status{Role: protocol.RoleRelaying}, nil
	})
	ai := peer.AddrInfo{ID: peer.ID("a")}
	ctx := context.Background()

	var wg sync.WaitGroup
	got := make([]*protocol.Status, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = c.get(ctx, ai)
		}()
	}
	// A waiter that gives up.
	short, cancel := context.WithCancel(ctx)
	cancel()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.get(short, ai); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(release)
	wg.Wait()
	for i, st := range got {
		if st == nil || st != got[0] {
			t.Fatalf("stripe %d got %v, want the shared answer", i, st)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d queries for 8 concurrent asks, want 1", n)
	}
	if st, _ := c.get(ctx, ai); st != got[0] || calls.Load() != 1 {
		t.Fatalf("fresh answer not reused (%d queries)", calls.Load())
	}
	time.Sleep(60 * time.Millisecond)
	fail.Store(true)
	if _, err := c.get(ctx, ai); err == nil || calls.Load() != 2 {
		t.Fatalf("stale answer: err %v after %d queries, want a new failing query", err, calls.Load())
	}
	if _, err := c.get(ctx, ai); err == nil || calls.Load() != 2 {
		t.Fatalf("fresh failure: err %v after %d queries, want it remembered", err, calls.Load())
	}
	if _, err := c.get(ctx, peer.AddrInfo{ID: peer.ID("b")}); err == nil || calls.Load() != 3 {
		t.Fatalf("another peer: err %v after %d queries", err, calls.Load())
	}
}
