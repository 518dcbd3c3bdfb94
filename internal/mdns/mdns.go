// Package mdns finds libp2p peers on the local network and announces this
// one, as the libp2p mDNS discovery specification describes: a service
// _p2p._udp in the domain local, whose instances carry the peer's full
// multiaddrs in TXT records "dnsaddr=/ip4/.../tcp/.../p2p/ID". Peers found
// are handed to a callback (and may be connected to by the caller); the
// service answers queries from any implementation of the specification,
// go-libp2p's own included.
package mdns

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"strings"
	"sync"
	"time"

	hmdns "github.com/hashicorp/mdns"
	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

var log = logging.Logger("roma/mdns")

// The names the specification fixes.
const (
	// ServiceName is the DNS-SD service of libp2p peers.
	ServiceName = "_p2p._udp"
	// Domain is the mDNS domain.
	Domain = "local"
	// dnsaddrPrefix starts every TXT string that carries an address.
	dnsaddrPrefix = "dnsaddr="
	// maxTXT is the longest string a TXT record holds.
	maxTXT = 255
)

// Host is what the service needs of a libp2p host.
type Host interface {
	ID() peer.ID
	Addrs() []ma.Multiaddr
}

// Options configure a Service.
type Options struct {
	// Interval is the time between two queries for peers.
	Interval time.Duration
	// QueryTimeout is how long one query collects answers.
	QueryTimeout time.Duration
	// Interface, if set, is the only interface mDNS runs on.
	Interface *net.Interface
	// Found is called once per peer and new address set seen.
	Found func(peer.AddrInfo)
	// NoAnnounce leaves this peer unannounced (browse only).
	NoAnnounce bool
}

// Option changes Options.
type Option func(*Options) error

// Defaults are the options a Service starts from.
func Defaults() Options {
	return Options{Interval: 10 * time.Second, QueryTimeout: time.Second}
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.Interval <= 0 {
		return errors.New("mdns: interval must be positive")
	}
	if o.QueryTimeout <= 0 || o.QueryTimeout > o.Interval {
		return errors.New("mdns: query timeout must be positive and at most the interval")
	}
	return nil
}

// WithInterval sets the time between two queries.
func WithInterval(d time.Duration) Option {
	return func(o *Options) error { o.Interval = d; return nil }
}

// WithQueryTimeout sets how long a query collects answers.
func WithQueryTimeout(d time.Duration) Option {
	return func(o *Options) error { o.QueryTimeout = d; return nil }
}

// WithInterface restricts mDNS to one interface.
func WithInterface(ifi *net.Interface) Option {
	return func(o *Options) error { o.Interface = ifi; return nil }
}

// WithFound sets the callback for peers found.
func WithFound(f func(peer.AddrInfo)) Option {
	return func(o *Options) error { o.Found = f; return nil }
}

// WithoutAnnounce only looks for peers, without announcing this one.
func WithoutAnnounce() Option {
	return func(o *Options) error { o.NoAnnounce = true; return nil }
}

// Service announces a host and looks for others until Close.
type Service struct {
	host   Host
	opts   Options
	server *hmdns.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	peers map[peer.ID]peer.AddrInfo
}

// New starts announcing h and querying for peers every interval.
func New(ctx context.Context, h Host, opts ...Option) (*Service, error) {
	o := Defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &Service{host: h, opts: o, peers: make(map[peer.ID]peer.AddrInfo)}
	if !o.NoAnnounce {
		zone, err := s.zone()
		if err != nil {
			return nil, err
		}
		srv, err := hmdns.NewServer(&hmdns.Config{Zone: zone, Iface: o.Interface, Logger: quietLogger()})
		if err != nil {
			return nil, fmt.Errorf("mdns: announce: %w", err)
		}
		s.server = srv
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.browse(ctx)
	}()
	return s, nil
}

// Close stops the service and waits for it.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	if s.server != nil {
		return s.server.Shutdown()
	}
	return nil
}

// Peers lists the peers found so far.
func (s *Service) Peers() []peer.AddrInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(s.peers))
	for _, ai := range s.peers {
		out = append(out, ai)
	}
	return out
}

// quietLogger swallows the standard-library logging of the mDNS library;
// what matters is logged here.
func quietLogger() *stdlog.Logger { return stdlog.New(io.Discard, "", 0) }

// zone builds the DNS-SD records of this host: a random instance name (as
// the specification asks), its addresses in TXT dnsaddr= strings, its IPs
// and first TCP port for the SRV and A/AAAA records.
func (s *Service) zone() (*hmdns.MDNSService, error) {
	instance := randomName(32)
	var txt []string
	var ips []net.IP
	port := 0
	seen := map[string]bool{}
	for _, a := range s.announcedAddrs() {
		full := a.Encapsulate(ma.StringCast("/p2p/" + s.host.ID().String()))
		if t := dnsaddrPrefix + full.String(); len(t) <= maxTXT {
			txt = append(txt, t)
		}
		if ip, err := manet.ToIP(a); err == nil && !seen[ip.String()] {
			seen[ip.String()] = true
			ips = append(ips, ip)
		}
		if port == 0 {
			if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
				fmt.Sscan(p, &port)
			}
		}
	}
	if len(txt) == 0 {
		return nil, errors.New("mdns: no address to announce")
	}
	if port == 0 {
		port = 4001 // SRV needs a port; the addresses are in TXT
	}
	z, err := hmdns.NewMDNSService(instance, ServiceName, Domain+".", instance+"."+Domain+".", port, ips, txt)
	if err != nil {
		return nil, fmt.Errorf("mdns: zone: %w", err)
	}
	return z, nil
}

// announcedAddrs are the host's addresses fit for a LAN: no unspecified
// addresses, and loopback only if there is nothing else.
func (s *Service) announcedAddrs() []ma.Multiaddr {
	var lan, loop []ma.Multiaddr
	for _, a := range s.host.Addrs() {
		switch {
		case manet.IsIPUnspecified(a):
		case manet.IsIPLoopback(a):
			loop = append(loop, a)
		default:
			lan = append(lan, a)
		}
	}
	if len(lan) == 0 {
		return loop
	}
	return lan
}

// browse queries now and then every interval until ctx ends.
func (s *Service) browse(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.query(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// query sends one query and handles the answers.
func (s *Service) query(ctx context.Context) {
	// hashicorp/mdns sends an entry on the channel and may still fill in
	// its fields afterwards, so entries are only collected here and read
	// once the query has returned.
	entries := make(chan *hmdns.ServiceEntry, 16)
	done := make(chan struct{})
	var got []*hmdns.ServiceEntry
	go func() {
		defer close(done)
		for e := range entries {
			got = append(got, e)
		}
	}()
	err := hmdns.QueryContext(ctx, &hmdns.QueryParam{
		Service:     ServiceName,
		Domain:      Domain,
		Timeout:     s.opts.QueryTimeout,
		Interface:   s.opts.Interface,
		Entries:     entries,
		DisableIPv6: true,
		Logger:      quietLogger(),
	})
	close(entries)
	<-done
	for _, e := range got {
		s.handle(e)
	}
	if err != nil && ctx.Err() == nil {
		log.Debugw("query", "err", err)
	}
}

// handle reads the peers of one answer.
func (s *Service) handle(e *hmdns.ServiceEntry) {
	for _, ai := range ParseTXT(e.InfoFields) {
		if ai.ID == s.host.ID() {
			continue
		}
		s.mu.Lock()
		old, seen := s.peers[ai.ID]
		fresh := !seen || len(old.Addrs) != len(ai.Addrs)
		s.peers[ai.ID] = ai
		s.mu.Unlock()
		if fresh {
			log.Debugw("found", "peer", ai.ID, "addrs", ai.Addrs)
			if s.opts.Found != nil {
				s.opts.Found(ai)
			}
		}
	}
}

// ParseTXT reads the peers in the TXT strings of an instance: every
// "dnsaddr=" string that is a multiaddr ending in /p2p/ID; others are
// skipped.
func ParseTXT(txt []string) []peer.AddrInfo {
	var out []peer.AddrInfo
	index := map[peer.ID]int{}
	for _, t := range txt {
		v, ok := strings.CutPrefix(t, dnsaddrPrefix)
		if !ok {
			continue
		}
		a, err := ma.NewMultiaddr(v)
		if err != nil {
			log.Debugw("bad dnsaddr", "txt", t, "err", err)
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			log.Debugw("dnsaddr without /p2p/", "txt", t, "err", err)
			continue
		}
		if i, ok := index[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out
}

// randomName is a random DNS label of n letters and digits.
func randomName(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
