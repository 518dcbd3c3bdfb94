package main

import (
	"context"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/mdns"
	"github.com/romap2p/romap2p/node"
)

// lan announces a node on the local network and collects the peers found
// there (mDNS); found peers are connected to, so the node's DHT and peer
// exchange learn of them too.
type lan struct {
	svc   *mdns.Service
	mu    sync.Mutex
	found []peer.AddrInfo
	seen  chan struct{} // closed at the first peer
	once  sync.Once
	wg    sync.WaitGroup
	stop  context.CancelFunc
	start context.Context
}

var log = logging.Logger("roma/cli")

// connectTimeout bounds one connection attempt to a peer found on the LAN.
const connectTimeout = 5 * time.Second

// startLAN starts mDNS for n until Close.
func startLAN(ctx context.Context, n *node.Node) (*lan, error) {
	l := &lan{seen: make(chan struct{})}
	l.start, l.stop = context.WithCancel(ctx)
	h := n.Host()
	svc, err := mdns.New(l.start, h, mdns.WithInterval(5*time.Second), mdns.WithFound(func(ai peer.AddrInfo) {
		l.mu.Lock()
		l.found = append(l.found, ai)
		l.mu.Unlock()
		l.once.Do(func() { close(l.seen) })
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			cctx, cancel := context.WithTimeout(l.start, connectTimeout)
			defer cancel()
			if err := h.Connect(cctx, ai); err != nil {
				log.Debugw("connect to LAN peer", "peer", ai.ID, "err", err)
			}
		}()
	}))
	if err != nil {
		l.stop()
		return nil, err
	}
	l.svc = svc
	return l, nil
}

// Wait returns the peers found so far, after waiting up to d for the
// first one.
func (l *lan) Wait(ctx context.Context, d time.Duration) []peer.AddrInfo {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.seen:
		// Answers of one query arrive together; give the others a moment.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	case <-t.C:
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]peer.AddrInfo(nil), l.found...)
}

// Close stops mDNS and waits for pending connection attempts.
func (l *lan) Close() error {
	err := l.svc.Close()
	l.stop()
	l.wg.Wait()
	return err
}
