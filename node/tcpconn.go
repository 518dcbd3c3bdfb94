package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"
)

// romap2p runs over TCP only, also on a host that speaks other transports
// (an embedder's host with QUIC, say). Its streams go on a TCP connection
// to the peer: one the host has already, else one the node dials itself
// through the host's own TCP transport. libp2p's swarm always reuses its
// best connection to a peer, whatever its transport, so a connection the
// node dials is kept by the node (tcpConns), not by the swarm; streams the
// peer opens on it are handed to the host's protocol handlers like any
// other. On a TCP-only host (NewHost) every connection is TCP and none of
// this runs.

// newStream opens a stream for pid to p on a TCP connection.
func (n *Node) newStream(ctx context.Context, p peer.ID, pid libp2pproto.ID) (network.Stream, error) {
	if n.tcp == nil {
		// Our own host: TCP only.
		return n.host.NewStream(ctx, p, pid)
	}
	if c := tcpConnOf(n.host.Network().ConnsToPeer(p)); c != nil {
		return openOn(ctx, c, pid)
	}
	if c := n.tcp.get(p); c != nil {
		if st, err := openOn(ctx, c, pid); err == nil {
			return st, nil
		}
	}
	// No TCP connection: on a host that dials TCP first it may come from
	// a plain connect; otherwise dial the peer's TCP addresses ourselves.
	if n.host.Network().Connectedness(p) != network.Connected {
		if err := n.host.Connect(ctx, peer.AddrInfo{ID: p}); err == nil {
			if c := tcpConnOf(n.host.Network().ConnsToPeer(p)); c != nil {
				return openOn(ctx, c, pid)
			}
		}
	}
	c, err := n.tcp.dial(ctx, p)
	if err != nil {
		return nil, err
	}
	return openOn(ctx, c, pid)
}

// isTCP reports whether a connection runs over TCP.
func isTCP(c network.Conn) bool {
	return c.ConnState().Transport == "tcp"
}

func tcpConnOf(conns []network.Conn) network.Conn {
	for _, c := range conns {
		if !c.IsClosed() && isTCP(c) {
			return c
		}
	}
	return nil
}

// openOn opens a stream on c and selects pid on it.
func openOn(ctx context.Context, c network.Conn, pid libp2pproto.ID) (network.Stream, error) {
	st, err := c.NewStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", c.RemotePeer(), err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	err = msmux.SelectProtoOrFail(pid, st)
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("%s: protocol %s: %w", c.RemotePeer(), pid, err)
	}
	_ = st.SetDeadline(time.Time{})
	if err := st.SetProtocol(pid); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("%s: protocol %s: %w", c.RemotePeer(), pid, err)
	}
	return st, nil
}

// tcpConns holds the TCP connections the node dialed itself on a host
// whose swarm prefers another transport. Each runs an accept loop in the
// node's group that hands the peer's streams to the host's handlers.
type tcpConns struct {
	n  *Node
	sw *swarm.Swarm

	mu     sync.Mutex
	conns  map[peer.ID]*ownConn
	dials  map[peer.ID]chan struct{} // a dial in flight; closed when it ends
	closed bool
}

// newTCPConns returns nil if the host cannot dial TCP itself (then nothing
// can be done beyond its own connections).
func newTCPConns(n *Node) *tcpConns {
	sw, ok := n.host.Network().(*swarm.Swarm)
	if !ok {
		return nil
	}
	return &tcpConns{n: n, sw: sw, conns: map[peer.ID]*ownConn{}, dials: map[peer.ID]chan struct{}{}}
}

func (t *tcpConns) get(p peer.ID) *ownConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.conns[p]
	if c != nil && c.IsClosed() {
		delete(t.conns, p)
		return nil
	}
	return c
}

// dial connects to p over one of its TCP addresses, once at a time per peer.
func (t *tcpConns) dial(ctx context.Context, p peer.ID) (*ownConn, error) {
	for {
		if c := t.get(p); c != nil {
			return c, nil
		}
		t.mu.Lock()
		wait, busy := t.dials[p]
		if !busy {
			wait = make(chan struct{})
			t.dials[p] = wait
		}
		t.mu.Unlock()
		if busy {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c, err := t.dialOnce(ctx, p)
		t.mu.Lock()
		delete(t.dials, p)
		closed := t.closed
		if c != nil && !closed {
			t.conns[p] = c
		}
		t.mu.Unlock()
		close(wait)
		if err != nil {
			return nil, err
		}
		if closed || !t.n.g.enter() {
			_ = c.Close()
			return nil, ErrClosed
		}
		go func() { defer t.n.g.leave(); c.acceptLoop(t.n) }()
		return c, nil
	}
}

func (t *tcpConns) dialOnce(ctx context.Context, p peer.ID) (*ownConn, error) {
	var errs []error
	for _, a := range t.n.host.Peerstore().Addrs(p) {
		if !isPlainTCP(a) {
			continue
		}
		tpt := t.sw.TransportForDialing(a)
		if tpt == nil {
			continue
		}
		cc, err := tpt.Dial(ctx, a, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a, err))
			continue
		}
		log.Debugw("dialed a TCP connection of our own", "peer", p, "addr", a)
		return &ownConn{CapableConn: cc, rm: t.sw.ResourceManager(), local: t.n.host.ID(), id: fmt.Sprintf("romap2p-tcp-%d", connSeq.Add(1))}, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s has no TCP address, and romap2p runs over TCP only", p)
	}
	return nil, fmt.Errorf("dial %s over TCP: %w", p, errors.Join(errs...))
}

// closeAll closes every connection the node dialed.
func (t *tcpConns) closeAll() {
	t.mu.Lock()
	conns := t.conns
	t.conns = map[peer.ID]*ownConn{}
	t.closed = true
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// isPlainTCP reports whether a is ip/tcp with nothing above TCP but /p2p.
func isPlainTCP(a ma.Multiaddr) bool {
	tcp := false
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_IP4, ma.P_IP6, ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
		case ma.P_TCP:
			tcp = true
		case ma.P_P2P:
		default:
			return false
		}
	}
	return tcp
}

var connSeq atomic.Uint64

// ownConn is a TCP connection the node dialed itself, seen as a
// network.Conn.
type ownConn struct {
	transport.CapableConn
	rm    network.ResourceManager
	local peer.ID
	id    string

	mu      sync.Mutex
	streams map[*ownStream]struct{}
}

var _ network.Conn = (*ownConn)(nil)

func (c *ownConn) ID() string                 { return c.id }
func (c *ownConn) LocalPeer() peer.ID         { return c.local }
func (c *ownConn) RemotePublicKey() ic.PubKey { return c.CapableConn.RemotePublicKey() }
func (c *ownConn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Direction: network.DirOutbound}}
}
func (c *ownConn) Scope() network.ConnScope           { return c.CapableConn.Scope() }
func (c *ownConn) ConnState() network.ConnectionState { return c.CapableConn.ConnState() }

// NewStream opens a stream; the caller selects its protocol.
func (c *ownConn) NewStream(ctx context.Context) (network.Stream, error) {
	scope, err := c.rm.OpenStream(c.RemotePeer(), network.DirOutbound)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	ms, err := c.CapableConn.OpenStream(ctx)
	if err != nil {
		scope.Done()
		return nil, err
	}
	return c.track(ms, scope, network.DirOutbound), nil
}

func (c *ownConn) track(ms network.MuxedStream, scope network.StreamManagementScope, dir network.Direction) *ownStream {
	s := &ownStream{MuxedStream: ms, conn: c, scope: scope, dir: dir, id: fmt.Sprintf("%s-%d", c.id, connSeq.Add(1))}
	c.mu.Lock()
	if c.streams == nil {
		c.streams = map[*ownStream]struct{}{}
	}
	c.streams[s] = struct{}{}
	c.mu.Unlock()
	return s
}

func (c *ownConn) untrack(s *ownStream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
}

// GetStreams lists the open streams.
func (c *ownConn) GetStreams() []network.Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]network.Stream, 0, len(c.streams))
	for s := range c.streams {
		out = append(out, s)
	}
	return out
}

// acceptLoop hands the streams the peer opens on the connection to the
// host's protocol handlers, until the connection closes.
func (c *ownConn) acceptLoop(n *Node) {
	defer c.Close()
	for {
		ms, err := c.AcceptStream()
		if err != nil {
			return
		}
		scope, err := c.rm.OpenStream(c.RemotePeer(), network.DirInbound)
		if err != nil {
			_ = ms.Reset()
			continue
		}
		s := c.track(ms, scope, network.DirInbound)
		if !n.g.enter() {
			_ = s.Reset()
			return
		}
		go func() {
			defer n.g.leave()
			_ = s.SetDeadline(time.Now().Add(n.cfg.tuning.HandshakeTimeout))
			pid, h, err := n.host.Mux().Negotiate(s)
			if err != nil {
				_ = s.Reset()
				return
			}
			_ = s.SetDeadline(time.Time{})
			if err := s.SetProtocol(pid); err != nil {
				_ = s.Reset()
				return
			}
			h(pid, s)
		}()
	}
}

// ownStream is a stream of an ownConn.
type ownStream struct {
	network.MuxedStream
	conn  *ownConn
	scope network.StreamManagementScope
	dir   network.Direction
	id    string
	proto atomic.Pointer[libp2pproto.ID]
	once  sync.Once
}

var _ network.Stream = (*ownStream)(nil)

func (s *ownStream) ID() string                 { return s.id }
func (s *ownStream) Conn() network.Conn         { return s.conn }
func (s *ownStream) Scope() network.StreamScope { return s.scope }
func (s *ownStream) Stat() network.Stats        { return network.Stats{Direction: s.dir} }

func (s *ownStream) Protocol() libp2pproto.ID {
	if p := s.proto.Load(); p != nil {
		return *p
	}
	return ""
}

func (s *ownStream) SetProtocol(p libp2pproto.ID) error {
	if err := s.scope.SetProtocol(p); err != nil {
		return err
	}
	s.proto.Store(&p)
	return nil
}

func (s *ownStream) done() {
	s.once.Do(func() {
		s.scope.Done()
		s.conn.untrack(s)
	})
}

func (s *ownStream) Close() error {
	err := s.MuxedStream.Close()
	s.done()
	return err
}

func (s *ownStream) Reset() error {
	err := s.MuxedStream.Reset()
	s.done()
	return err
}

func (s *ownStream) ResetWithError(code network.StreamErrorCode) error {
	err := s.MuxedStream.ResetWithError(code)
	s.done()
	return err
}
