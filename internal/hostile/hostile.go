// Package hostile is a test helper: libp2p identities that subscribe to a
// romap2p parent the way a hostile or broken peer would, to show that an
// honest peer is served whatever they do, and a Saboteur that corrupts the
// symbols a node sends to its children. Only tests, and the command built
// with the romap2p_saboteur build tag, import it.
package hostile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// Behaviour is what a subscriber does once its subscription is accepted.
type Behaviour int

const (
	// ReadNothing never reads from the stream and sends nothing more.
	ReadNothing Behaviour = iota
	// ReadSlowly reads ReadRate bytes per second.
	ReadSlowly
	// ExtensionFrames sends a few frames of an extension type (which a
	// parent skips), then stays silent and reads nothing.
	ExtensionFrames
	// TruncatedCredit sends the first part of a credit frame, then stays
	// silent and reads nothing.
	TruncatedCredit
	// FakeCredit sends credit frames that claim symbols received, every
	// 200 ms, and reads nothing.
	FakeCredit
)

func (b Behaviour) String() string {
	switch b {
	case ReadNothing:
		return "read-nothing"
	case ReadSlowly:
		return "read-slowly"
	case ExtensionFrames:
		return "extension-frames"
	case TruncatedCredit:
		return "truncated-credit"
	case FakeCredit:
		return "fake-credit"
	}
	return fmt.Sprintf("behaviour(%d)", int(b))
}

// Options configure a Flood.
type Options struct {
	// Behaviour of every subscriber.
	Behaviour Behaviour
	// ReadRate is the rate of ReadSlowly, bytes/s (default 1024).
	ReadRate int
	// Stripes is the stripe count subscribers use (default 8); identity i
	// subscribes to stripe i mod Stripes.
	Stripes int
	// Resubscribe makes each identity subscribe again, at once, whenever
	// its subscription ends or is refused, until the flood is closed. (An
	// identity that stays silent, ExtensionFrames or TruncatedCredit,
	// cannot tell that its subscription ended: it subscribes again only
	// when refused.)
	Resubscribe bool
	// ListenIP, when set, is a loopback or local address every identity
	// listens on, and so dials from (the TCP transport reuses its listen
	// port): floods from another address than the honest peers'.
	ListenIP string
}

// Defaults fills the options left zero.
func (o *Options) Defaults() {
	if o.ReadRate == 0 {
		o.ReadRate = 1024
	}
	if o.Stripes == 0 {
		o.Stripes = 8
	}
}

// Validate reports unusable options.
func (o *Options) Validate() error {
	if o.ReadRate < 0 {
		return errors.New("hostile: negative read rate")
	}
	if o.Stripes < 1 || o.Stripes > protocol.MaxStripes {
		return fmt.Errorf("hostile: stripes %d out of range", o.Stripes)
	}
	return nil
}

// Stats counts what the identities of a flood saw.
type Stats struct {
	Accepted int // subscriptions accepted
	Full     int // refused "full"
	Refused  int // refused for another reason
	Failed   int // could not connect or open a stream
	Ended    int // accepted subscriptions the parent ended
}

// Flood is a set of identities subscribed to one parent.
type Flood struct {
	hosts  []host.Host
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	stats Stats
}

// NewFlood starts n identities, each on its own libp2p host, that subscribe
// to content c at target and behave as opts say. It returns once every
// identity has made its first attempt. Close stops them.
func NewFlood(ctx context.Context, n int, target peer.AddrInfo, c cid.Cid, opts Options) (*Flood, error) {
	opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	f := &Flood{}
	for range n {
		listen := libp2p.NoListenAddrs
		if opts.ListenIP != "" {
			listen = libp2p.ListenAddrStrings("/ip4/" + opts.ListenIP + "/tcp/0")
		}
		h, err := libp2p.New(listen, libp2p.ResourceManager(&network.NullResourceManager{}))
		if err != nil {
			f.closeHosts()
			return nil, fmt.Errorf("hostile host: %w", err)
		}
		f.hosts = append(f.hosts, h)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	var first sync.WaitGroup
	first.Add(n)
	for i, h := range f.hosts {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			once := sync.OnceFunc(first.Done)
			defer once()
			for {
				f.subscribe(runCtx, h, target, c, i%opts.Stripes, opts, once)
				if !opts.Resubscribe || runCtx.Err() != nil {
					<-runCtx.Done()
					return
				}
				select {
				case <-runCtx.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { first.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.Close()
		return nil, ctx.Err()
	}
	return f, nil
}

// subscribe makes one subscription and behaves on it until it ends or the
// flood closes; attempted is called once the reply is in.
func (f *Flood) subscribe(ctx context.Context, h host.Host, target peer.AddrInfo, c cid.Cid, stripe int, opts Options, attempted func()) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := h.Connect(cctx, target)
	var st network.Stream
	if err == nil {
		st, err = h.NewStream(cctx, target.ID, protocol.SymbolsID)
	}
	cancel()
	if err != nil {
		f.count(func(s *Stats) { s.Failed++ })
		attempted()
		return
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	defer st.Reset()
	sub := &protocol.Subscribe{CID: c, Stripes: opts.Stripes, Stripe: stripe}
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	if err := protocol.WriteSubscribe(st, sub); err != nil {
		f.count(func(s *Stats) { s.Failed++ })
		attempted()
		return
	}
	reply, err := protocol.ReadSubscribeReply(st)
	_ = st.SetDeadline(time.Time{})
	switch {
	case err != nil:
		f.count(func(s *Stats) { s.Failed++ })
	case reply.Accepted:
		f.count(func(s *Stats) { s.Accepted++ })
	case reply.Reason == "full":
		f.count(func(s *Stats) { s.Full++ })
	default:
		f.count(func(s *Stats) { s.Refused++ })
	}
	attempted()
	if err != nil || !reply.Accepted {
		return
	}
	if behave(ctx, st, opts) && ctx.Err() == nil {
		f.count(func(s *Stats) { s.Ended++ })
	}
}

// behave does what opts say on an accepted subscription; it reports true
// when the parent ended the stream (rather than the flood closing).
func behave(ctx context.Context, st network.Stream, opts Options) bool {
	switch opts.Behaviour {
	case ExtensionFrames:
		fr, _ := protocol.AppendCreditFrame(nil, []protocol.Credit{{SBN: 0, Allow: 1}})
		fr[0] = 0x9f // an extension type a parent skips
		for range 3 {
			if _, err := st.Write(fr); err != nil {
				return true
			}
		}
	case TruncatedCredit:
		fr, _ := protocol.AppendCreditFrame(nil, []protocol.Credit{{SBN: 0, Base: 1 << 20, Allow: 1 << 20}, {SBN: 1, Base: 1 << 20, Allow: 1 << 20}})
		if _, err := st.Write(fr[:len(fr)-3]); err != nil {
			return true
		}
	case ReadNothing:
		return waitEnd(ctx, st)
	case ReadSlowly:
		return readSlowly(ctx, st, opts.ReadRate)
	case FakeCredit:
		base := uint32(0)
		for {
			base += 64
			fr, _ := protocol.AppendCreditFrame(nil, []protocol.Credit{{SBN: 0, Base: base, Allow: 1 << 16}})
			_ = st.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := st.Write(fr); err != nil {
				return true
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	<-ctx.Done() // silent from here on
	return false
}

// waitEnd waits, reading nothing, until the parent ends the stream or ctx
// ends. Without reading, the end shows as the stream's write side failing:
// it probes that now and then with an extension frame of no content, which
// a parent skips.
func waitEnd(ctx context.Context, st network.Stream) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
		_ = st.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := st.Write([]byte{0x9e, 0}); err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
			return true
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// readSlowly reads rate bytes per second until the stream ends.
func readSlowly(ctx context.Context, st network.Stream, rate int) bool {
	buf := make([]byte, max(1, rate/10))
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if _, err := io.ReadFull(st, buf); err != nil {
			return true
		}
	}
}

func (f *Flood) count(fn func(*Stats)) {
	f.mu.Lock()
	fn(&f.stats)
	f.mu.Unlock()
}

// Stats returns what the identities saw so far.
func (f *Flood) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Close stops every identity and waits for them.
func (f *Flood) Close() error {
	f.cancel()
	f.wg.Wait()
	return f.closeHosts()
}

func (f *Flood) closeHosts() error {
	var errs []error
	for _, h := range f.hosts {
		errs = append(errs, h.Close())
	}
	return errors.Join(errs...)
}
