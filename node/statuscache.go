package node

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// statusCache shares a download's status answers among its stripes. Every
// stripe's manager asks its candidates for their status when it attaches
// and when it re-evaluates; with k stripes each peer used to be asked k
// times at once, and on a slow access link those answers took a few
// percent of the downlink. An answer younger than maxAge is reused, and a
// query in flight is joined rather than repeated. Answers are read only.
type statusCache struct {
	maxAge time.Duration
	query  func(ctx context.Context, ai peer.AddrInfo) (*protocol.Status, error)

	mu sync.Mutex
	by map[peer.ID]*statusEntry
}

// statusEntry is one peer's answer; st, err and at are set before done is
// closed and never after.
type statusEntry struct {
	done chan struct{}
	at   time.Time
	st   *protocol.Status
	err  error
}

// statusCacheLimit bounds the entries kept: past it, stale ones go.
const statusCacheLimit = 256

func newStatusCache(maxAge time.Duration, query func(context.Context, peer.AddrInfo) (*protocol.Status, error)) *statusCache {
	return &statusCache{maxAge: maxAge, query: query, by: make(map[peer.ID]*statusEntry)}
}

// get returns ai's status: a fresh enough answer, the answer of a query in
// flight, or a new query's. A failed query is remembered as long as an
// answer would be, so that k stripes do not each wait on a peer that
// cannot be reached.
func (c *statusCache) get(ctx context.Context, ai peer.AddrInfo) (*protocol.Status, error) {
	c.mu.Lock()
	e := c.by[ai.ID]
	if e != nil {
		select {
		case <-e.done:
			if time.Since(e.at) >= c.maxAge {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		e = &statusEntry{done: make(chan struct{})}
		c.pruneLocked()
		c.by[ai.ID] = e
		c.mu.Unlock()
		e.st, e.err = c.query(ctx, ai)
		e.at = time.Now()
		close(e.done)
		return e.st, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.st, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pruneLocked drops stale answers once the cache holds too many.
func (c *statusCache) pruneLocked() {
	if len(c.by) < statusCacheLimit {
		return
	}
	for id, e := range c.by {
		select {
		case <-e.done:
			if time.Since(e.at) >= c.maxAge {
				delete(c.by, id)
			}
		default:
		}
	}
}
