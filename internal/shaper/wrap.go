package shaper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Writer returns a writer that shapes the bytes written to w as traffic from
// host from to host to. Each Write waits for tokens from the pair's bucket,
// the uplink of from and the downlink of to, bought a chunk at a time, and
// passes each paid-for piece (at most about two chunks) to w at once; a
// Write of any size is accepted and the count it returns is exact. While
// nothing limits the flow, a Write goes to w whole. Errors from w are returned unchanged.
//
// The result also implements io.Closer: Close releases a Write that is
// waiting for tokens (it returns the bytes written so far and ErrClosed),
// makes later Writes fail with ErrClosed, and closes w if w is an io.Closer.
// Concurrent Writes are serialised.
func (nw *Network) Writer(from, to string, w io.Writer) io.Writer {
	c := newCloser()
	return &writer{nw: nw, p: nw.link(from, to), w: w, c: c, wt: waiter{done: c.done}}
}

type writer struct {
	nw *Network
	p  *pair
	w  io.Writer
	c  *closer

	mu sync.Mutex // serialises Write and guards wt
	wt waiter
}

// Write implements io.Writer.
func (w *writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(b) == 0 {
		if w.c.closed() {
			return 0, ErrClosed
		}
		return w.w.Write(b)
	}
	return shapedWrite(w.nw, w.p, w.w, w.c, &w.wt, b)
}

// Close implements io.Closer.
func (w *writer) Close() error {
	if !w.c.close() {
		return nil
	}
	if c, ok := w.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// shapedWrite writes b to dst in granted pieces.
func shapedWrite(nw *Network, p *pair, dst io.Writer, c *closer, wt *waiter, b []byte) (int, error) {
	written := 0
	for written < len(b) {
		if c.closed() {
			nw.refund(p, wt)
			return written, ErrClosed
		}
		g, err := nw.acquire(p, len(b)-written, wt)
		if err != nil {
			nw.refund(p, wt)
			return written, err
		}
		n, err := dst.Write(b[written : written+g])
		p.count(n)
		written += n
		if err != nil {
			return written, err
		}
		if n < g {
			return written, io.ErrShortWrite
		}
	}
	return written, nil
}

// Reader returns a reader that shapes the bytes read from r as traffic from
// host from to host to. Each Read returns what r returned once the bytes have
// been paid for (while limited, a Read asks r for at most one chunk). Errors
// from r, io.EOF included, are returned unchanged.
//
// The result also implements io.Closer: Close releases a Read that is waiting
// for tokens (it returns the bytes read together with ErrClosed), makes later
// Reads fail with ErrClosed, and closes r if r is an io.Closer.
// Concurrent Reads are serialised.
func (nw *Network) Reader(from, to string, r io.Reader) io.Reader {
	c := newCloser()
	return &reader{nw: nw, p: nw.link(from, to), r: r, c: c, wt: waiter{done: c.done}}
}

type reader struct {
	nw *Network
	p  *pair
	r  io.Reader
	c  *closer

	mu sync.Mutex // serialises Read and guards wt
	wt waiter
}

// Read implements io.Reader.
func (r *reader) Read(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return shapedRead(r.nw, r.p, r.r, r.c, &r.wt, b)
}

// Close implements io.Closer.
func (r *reader) Close() error {
	if !r.c.close() {
		return nil
	}
	if c, ok := r.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// shapedRead reads from src into b and waits until the bytes are paid for.
func shapedRead(nw *Network, p *pair, src io.Reader, c *closer, wt *waiter, b []byte) (int, error) {
	if c.closed() {
		nw.refund(p, wt)
		return 0, ErrClosed
	}
	if chunk := nw.chunkSize(); len(b) > chunk && p.limited() {
		b = b[:chunk]
	}
	n, err := src.Read(b)
	for paid := 0; paid < n; {
		g, werr := nw.acquire(p, n-paid, wt)
		if werr != nil {
			nw.refund(p, wt)
			return n, werr
		}
		p.count(g)
		paid += g
	}
	return n, err
}

// Conn wraps c, a connection of host local to host remote, so that writes
// are shaped as traffic local → remote and reads as traffic remote → local.
// Wrap one end of a connection only (for example the dialing end, see
// Dialer): reads are shaped by reading slowly, which TCP turns into
// back-pressure on the far end, so the far end's writes need no shaping of
// their own. Waits for tokens ignore deadlines; Close releases them, closes c
// and makes later calls fail with ErrClosed.
func (nw *Network) Conn(local, remote string, c net.Conn) net.Conn {
	cl := newCloser()
	return &conn{
		Conn: c,
		nw:   nw,
		out:  nw.link(local, remote),
		in:   nw.link(remote, local),
		c:    cl,
		wwt:  waiter{done: cl.done},
		rwt:  waiter{done: cl.done},
	}
}

type conn struct {
	net.Conn
	nw      *Network
	out, in *pair
	c       *closer

	wmu sync.Mutex // serialises Write and guards wwt
	wwt waiter
	rmu sync.Mutex // serialises Read and guards rwt
	rwt waiter
}

// Write implements net.Conn.
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(b) == 0 {
		if c.c.closed() {
			return 0, ErrClosed
		}
		return c.Conn.Write(b)
	}
	return shapedWrite(c.nw, c.out, c.Conn, c.c, &c.wwt, b)
}

// Read implements net.Conn.
func (c *conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return shapedRead(c.nw, c.in, c.Conn, c.c, &c.rwt, b)
}

// Close implements net.Conn.
func (c *conn) Close() error {
	if !c.c.close() {
		return nil
	}
	return c.Conn.Close()
}

// Dialer dials connections for host Local and shapes each one with
// Network.Conn. Its DialContext method fits the context dialers that
// transports accept (for example go-libp2p's tcp.WithDialerForAddr).
type Dialer struct {
	// Network shapes the connections.
	Network *Network
	// Local names the dialing host.
	Local string
	// Remote names the host listening at address.
	Remote func(network, address string) (string, error)
	// Dialer makes the underlying connections.
	Dialer net.Dialer
}

// DialContext dials address and returns the shaped connection.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	remote, err := d.Remote(network, address)
	if err != nil {
		return nil, fmt.Errorf("shaper: name host at %s: %w", address, err)
	}
	c, err := d.Dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("shaper: dial %s (%s): %w", remote, address, err)
	}
	return d.Network.Conn(d.Local, remote, c), nil
}

// The TCP socket options below pass through to the wrapped connection, so
// that code tuning a TCP connection (keep-alives, linger, half-close) works
// on a shaped one. They fail with errors.ErrUnsupported when the wrapped
// connection lacks them.

// SetKeepAlive sets keep-alive on the wrapped connection.
func (c *conn) SetKeepAlive(keepalive bool) error {
	if k, ok := c.Conn.(interface{ SetKeepAlive(bool) error }); ok {
		return k.SetKeepAlive(keepalive)
	}
	return unsupported("SetKeepAlive")
}

// SetKeepAlivePeriod sets the keep-alive period on the wrapped connection.
func (c *conn) SetKeepAlivePeriod(d time.Duration) error {
	if k, ok := c.Conn.(interface{ SetKeepAlivePeriod(time.Duration) error }); ok {
		return k.SetKeepAlivePeriod(d)
	}
	return unsupported("SetKeepAlivePeriod")
}

// SetLinger sets the linger time of the wrapped connection.
func (c *conn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return unsupported("SetLinger")
}

// CloseWrite shuts down the writing side of the wrapped connection.
func (c *conn) CloseWrite() error {
	if w, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return w.CloseWrite()
	}
	return unsupported("CloseWrite")
}

// CloseRead shuts down the reading side of the wrapped connection.
func (c *conn) CloseRead() error {
	if r, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return r.CloseRead()
	}
	return unsupported("CloseRead")
}

func unsupported(method string) error {
	return fmt.Errorf("shaper: %s on the wrapped connection: %w", method, errors.ErrUnsupported)
}
