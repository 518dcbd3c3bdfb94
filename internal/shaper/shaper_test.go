package shaper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain fails the run if goroutines started by the tests are still alive
// after them: the package must not leave anything running.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "goroutines leaked: %d before, %d after\n%s\n",
				before, n, buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

// sink counts what is written to it.
type sink struct {
	n      atomic.Int64
	closed atomic.Bool
}

func (s *sink) Write(b []byte) (int, error) {
	s.n.Add(int64(len(b)))
	return len(b), nil
}

func (s *sink) Close() error {
	s.closed.Store(true)
	return nil
}

// result is what one flow achieved.
type result struct {
	bytes   int64
	elapsed time.Duration
}

func (r result) rate() float64 { return float64(r.bytes) / r.elapsed.Seconds() }

// pump writes 64 KiB buffers to w until d has passed since start.
func pump(w io.Writer, start time.Time, d time.Duration) result {
	buf := make([]byte, 64<<10)
	var n int64
	for time.Since(start) < d {
		m, err := w.Write(buf)
		n += int64(m)
		if err != nil {
			break
		}
	}
	return result{bytes: n, elapsed: time.Since(start)}
}

// pumpAll runs one pump per writer at the same time.
func pumpAll(d time.Duration, ws ...io.Writer) []result {
	res := make([]result, len(ws))
	var wg sync.WaitGroup
	start := time.Now()
	for i, w := range ws {
		wg.Go(func() { res[i] = pump(w, start, d) })
	}
	wg.Wait()
	return res
}

const mb = 1e6

// checkRate fails unless r's rate is within [lo, hi] times want.
func checkRate(t *testing.T, name string, r result, want, lo, hi float64) {
	t.Helper()
	got := r.rate()
	t.Logf("%s: %.3f MB/s (want %.3f MB/s), %d bytes in %v", name, got/mb, want/mb, r.bytes, r.elapsed)
	if got < lo*want || got > hi*want {
		t.Errorf("%s: rate %.3f MB/s, want within [%.2f, %.2f] x %.3f MB/s", name, got/mb, lo, hi, want/mb)
	}
}

// checkCeiling fails if more bytes passed than a bucket of this rate and
// burst can ever grant in r.elapsed (plus slack for in-flight chunks).
func checkCeiling(t *testing.T, name string, bytes int64, elapsed time.Duration, rate, burst float64, chunks int) {
	t.Helper()
	ceiling := rate*elapsed.Seconds() + burst + float64(chunks*DefaultChunkSize)
	if float64(bytes) > ceiling {
		t.Errorf("%s: %d bytes in %v exceeds the bucket's ceiling %.0f", name, bytes, elapsed, ceiling)
	}
}

func TestSingleFlowRate(t *testing.T) {
	t.Parallel()
	const rate = 8 * mb
	nw := NewNetwork()
	nw.SetPairRate("a", "b", rate)
	var s sink
	r := pumpAll(2*time.Second, nw.Writer("a", "b", &s))[0]
	checkRate(t, "a->b", r, rate, 0.9, 1.02)
	checkCeiling(t, "a->b", r.bytes, r.elapsed, rate, rate*DefaultBurstWindow.Seconds(), 1)
	if s.n.Load() != r.bytes || nw.PairBytes("a", "b") != r.bytes {
		t.Errorf("sink got %d, pair counter %d, writer returned %d", s.n.Load(), nw.PairBytes("a", "b"), r.bytes)
	}
	if st := nw.HostStats("a"); st.Uploaded != r.bytes || st.Downloaded != 0 {
		t.Errorf("host a stats %+v, want uploaded %d", st, r.bytes)
	}
	if st := nw.HostStats("b"); st.Downloaded != r.bytes || st.Uploaded != 0 {
		t.Errorf("host b stats %+v, want downloaded %d", st, r.bytes)
	}
}

func TestSharedUplinkSplitsEvenly(t *testing.T) {
	t.Parallel()
	const up = 8 * mb
	nw := NewNetwork()
	nw.SetUplink("a", up)
	res := pumpAll(1500*time.Millisecond, nw.Writer("a", "b", io.Discard), nw.Writer("a", "c", io.Discard))
	checkRate(t, "a->b", res[0], up/2, 0.85, 1.15)
	checkRate(t, "a->c", res[1], up/2, 0.85, 1.15)
	total := result{bytes: res[0].bytes + res[1].bytes, elapsed: max(res[0].elapsed, res[1].elapsed)}
	checkRate(t, "uplink a", total, up, 0.9, 1.02)
	checkCeiling(t, "uplink a", total.bytes, total.elapsed, up, up*DefaultBurstWindow.Seconds(), 2)
	if got := nw.HostStats("a").Uploaded; got != total.bytes {
		t.Errorf("uploaded by a: %d, want %d", got, total.bytes)
	}
}

// smallWrites writes to w in pieces of size bytes.
type smallWrites struct {
	w    io.Writer
	size int
}

func (s smallWrites) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := s.w.Write(b[n:min(len(b), n+s.size)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestFairnessIndependentOfWriteSize(t *testing.T) {
	t.Parallel()
	const up = 4 * mb
	nw := NewNetwork()
	nw.SetUplink("a", up)
	small := smallWrites{w: nw.Writer("a", "b", io.Discard), size: 1000}
	res := pumpAll(1500*time.Millisecond, small, nw.Writer("a", "c", io.Discard))
	checkRate(t, "a->b (1000-byte writes)", res[0], up/2, 0.85, 1.15)
	checkRate(t, "a->c (64 KiB writes)", res[1], up/2, 0.85, 1.15)
}

func TestPairLimitedFlowLeavesUplinkToOthers(t *testing.T) {
	t.Parallel()
	const up, pairRate = 8 * mb, 2 * mb
	nw := NewNetwork()
	nw.SetUplink("a", up)
	nw.SetPairRate("a", "b", pairRate)
	res := pumpAll(1500*time.Millisecond, nw.Writer("a", "b", io.Discard), nw.Writer("a", "c", io.Discard))
	checkRate(t, "a->b (pair-limited)", res[0], pairRate, 0.85, 1.05)
	checkCeiling(t, "a->b", res[0].bytes, res[0].elapsed, pairRate, DefaultMinBurst, 1)
	checkRate(t, "a->c (rest of uplink)", res[1], up-pairRate, 0.85, 1.1)
	total := res[0].bytes + res[1].bytes
	checkCeiling(t, "uplink a", total, max(res[0].elapsed, res[1].elapsed), up, up*DefaultBurstWindow.Seconds(), 2)
}

func TestSharedDownlink(t *testing.T) {
	t.Parallel()
	const down = 6 * mb
	nw := NewNetwork()
	nw.SetDownlink("a", down)
	nw.SetUplink("b", 100*mb) // generous caps elsewhere must not matter
	res := pumpAll(1500*time.Millisecond, nw.Writer("b", "a", io.Discard), nw.Writer("c", "a", io.Discard))
	checkRate(t, "b->a", res[0], down/2, 0.85, 1.15)
	checkRate(t, "c->a", res[1], down/2, 0.85, 1.15)
	total := res[0].bytes + res[1].bytes
	checkCeiling(t, "downlink a", total, max(res[0].elapsed, res[1].elapsed), down, down*DefaultBurstWindow.Seconds(), 2)
	if got := nw.HostStats("a").Downloaded; got != total {
		t.Errorf("downloaded by a: %d, want %d", got, total)
	}
}

func TestCloseReleasesBlockedWriter(t *testing.T) {
	t.Parallel()
	nw := NewNetwork(WithBurst(0, 0))
	nw.SetPairRate("a", "b", 1000) // 1 MiB would take over 17 minutes
	var s sink
	w := nw.Writer("a", "b", &s)
	type ret struct {
		n   int
		err error
	}
	done := make(chan ret, 1)
	go func() {
		n, err := w.Write(make([]byte, 1<<20))
		done <- ret{n, err}
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("Write returned before Close: %d, %v", r.n, r.err)
	default:
	}
	if err := w.(io.Closer).Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case r := <-done:
		if !errors.Is(r.err, ErrClosed) || !errors.Is(r.err, net.ErrClosed) {
			t.Errorf("Write error %v, want ErrClosed", r.err)
		}
		if int64(r.n) != s.n.Load() || r.n >= 1<<20 {
			t.Errorf("Write returned %d, sink has %d", r.n, s.n.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the blocked Write")
	}
	if !s.closed.Load() {
		t.Error("Close did not close the inner writer")
	}
	if n, err := w.Write([]byte("x")); n != 0 || !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %d, %v; want 0, ErrClosed", n, err)
	}
	if err := w.(io.Closer).Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseReleasesBlockedReader(t *testing.T) {
	t.Parallel()
	nw := NewNetwork(WithBurst(0, 0))
	nw.SetDownlink("b", 100)
	r := nw.Reader("a", "b", bytes.NewReader(make([]byte, 4096)))
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 4096))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := r.(io.Closer).Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Read error %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the blocked Read")
	}
}

func TestWriteIsExactAndInOrder(t *testing.T) {
	t.Parallel()
	nw := NewNetwork(WithChunkSize(1000))
	nw.SetPairRate("a", "b", 1e12) // limited, so writes are chunked, but never slow
	var buf bytes.Buffer
	w := nw.Writer("a", "b", &buf)
	var want bytes.Buffer
	for i, size := range []int{0, 1, 999, 1000, 1001, 123457} {
		p := bytes.Repeat([]byte{byte(i + 1)}, size)
		n, err := w.Write(p)
		if n != size || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", size, n, err)
		}
		want.Write(p)
	}
	if !bytes.Equal(buf.Bytes(), want.Bytes()) {
		t.Fatal("inner writer did not receive the bytes in order")
	}
	if got := nw.PairBytes("a", "b"); got != int64(want.Len()) {
		t.Errorf("pair counter %d, want %d", got, want.Len())
	}
}

// chunkRecorder remembers the size of every write.
type chunkRecorder struct{ sizes []int }

func (c *chunkRecorder) Write(b []byte) (int, error) {
	c.sizes = append(c.sizes, len(b))
	return len(b), nil
}

func TestChunking(t *testing.T) {
	t.Parallel()
	nw := NewNetwork()
	var rec chunkRecorder
	w := nw.Writer("a", "b", &rec)
	if _, err := w.Write(make([]byte, 100000)); err != nil {
		t.Fatal(err)
	}
	if len(rec.sizes) != 1 {
		t.Errorf("unlimited write split into %v, want one piece", rec.sizes)
	}
	rec.sizes = nil
	nw.SetDownlink("b", 1e12)
	if _, err := w.Write(make([]byte, 40000)); err != nil {
		t.Fatal(err)
	}
	want := []int{DefaultChunkSize, DefaultChunkSize, 40000 - 2*DefaultChunkSize}
	if fmt.Sprint(rec.sizes) != fmt.Sprint(want) {
		t.Errorf("limited write split into %v, want %v", rec.sizes, want)
	}
}

// failingWriter accepts limit bytes, then fails or writes short.
type failingWriter struct {
	limit int
	err   error
}

func (f *failingWriter) Write(b []byte) (int, error) {
	n := min(len(b), f.limit)
	f.limit -= n
	if n < len(b) {
		return n, f.err
	}
	return n, nil
}

func TestInnerErrors(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	nw := NewNetwork(WithChunkSize(100))
	nw.SetUplink("a", 1e12)
	n, err := nw.Writer("a", "b", &failingWriter{limit: 250, err: errBoom}).Write(make([]byte, 1000))
	if n != 250 || !errors.Is(err, errBoom) {
		t.Errorf("Write = %d, %v; want 250, boom", n, err)
	}
	n, err = nw.Writer("a", "c", &failingWriter{limit: 250}).Write(make([]byte, 1000))
	if n != 250 || !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("Write = %d, %v; want 250, short write", n, err)
	}
	if got := nw.HostStats("a").Uploaded; got != 500 {
		t.Errorf("uploaded %d, want 500", got)
	}
}

func TestZeroNetworkAndRateChanges(t *testing.T) {
	t.Parallel()
	var nw Network
	var s sink
	w := nw.Writer("a", "b", &s)
	if _, err := w.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// Limit the pair hard: a 1 MiB write now cannot finish quickly.
	nw.SetPairRate("a", "b", 1000)
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(make([]byte, 1<<20))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("limited Write finished at once: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	w.(io.Closer).Close()
	<-done
	// Values that are not positive finite rates mean unlimited.
	for _, r := range []float64{0, -5, math.Inf(1), math.NaN()} {
		nw.SetPairRate("x", "y", r)
		start := time.Now()
		if _, err := nw.Writer("x", "y", io.Discard).Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("rate %v limited the pair", r)
		}
	}
	if got := nw.Hosts(); fmt.Sprint(got) != "[a b x y]" {
		t.Errorf("Hosts() = %v", got)
	}
	if st := nw.HostStats("nobody"); st != (HostStats{}) {
		t.Errorf("unknown host stats %+v", st)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	nw := NewNetwork()
	hosts := []string{"a", "b", "c", "d"}
	for _, h := range hosts {
		nw.SetUplink(h, 1e11)
		nw.SetDownlink(h, 1e11)
	}
	var wg sync.WaitGroup
	var total atomic.Int64
	for _, from := range hosts {
		for _, to := range hosts {
			if from == to {
				continue
			}
			w := nw.Writer(from, to, io.Discard)
			wg.Go(func() {
				for i := range 200 {
					n, err := w.Write(make([]byte, 1000+i*97))
					if err != nil {
						t.Error(err)
						return
					}
					total.Add(int64(n))
				}
			})
		}
	}
	wg.Go(func() {
		for i := range 200 {
			nw.SetPairRate("a", "b", float64(1e10+i))
			nw.HostStats("a")
			nw.PairBytes("c", "d")
		}
	})
	wg.Wait()
	var up, down int64
	for _, h := range hosts {
		st := nw.HostStats(h)
		up += st.Uploaded
		down += st.Downloaded
	}
	if up != total.Load() || down != total.Load() {
		t.Errorf("uploaded %d, downloaded %d, written %d", up, down, total.Load())
	}
}

// TestConnOverLoopback shapes a real TCP connection from its dialing end in
// both directions.
func TestConnOverLoopback(t *testing.T) {
	t.Parallel()
	const up, down = 4 * mb, 2 * mb
	nw := NewNetwork()
	nw.SetUplink("client", up)
	nw.SetDownlink("client", down)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverDone := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverDone <- result{}
			return
		}
		defer c.Close()
		// First phase: count what the client sends until it half-closes.
		n, _ := io.Copy(io.Discard, c)
		serverDone <- result{bytes: n}
		// Second phase: send until the client closes.
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()

	d := &Dialer{
		Network: nw,
		Local:   "client",
		Remote: func(_, address string) (string, error) {
			if address != ln.Addr().String() {
				return "", fmt.Errorf("unknown address %s", address)
			}
			return "server", nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	sent := pump(c, time.Now(), time.Second)
	checkRate(t, "client->server", sent, up, 0.85, 1.05)
	tcpish, ok := c.(interface {
		CloseWrite() error
		SetKeepAlive(bool) error
		SetLinger(int) error
	})
	if !ok {
		t.Fatal("shaped TCP connection hides the TCP methods")
	}
	if err := tcpish.SetKeepAlive(true); err != nil {
		t.Errorf("SetKeepAlive: %v", err)
	}
	if err := tcpish.SetLinger(0); err != nil {
		t.Errorf("SetLinger: %v", err)
	}
	if err := tcpish.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if got := (<-serverDone).bytes; got != sent.bytes {
		t.Errorf("server received %d bytes, client sent %d", got, sent.bytes)
	}

	buf := make([]byte, 256<<10)
	var got int64
	start := time.Now()
	for time.Since(start) < time.Second {
		n, err := c.Read(buf)
		got += int64(n)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	recv := result{bytes: got, elapsed: time.Since(start)}
	checkRate(t, "server->client", recv, down, 0.85, 1.05)
	if st := nw.HostStats("client"); st.Uploaded != sent.bytes || st.Downloaded != got {
		t.Errorf("client stats %+v, want %d up, %d down", st, sent.bytes, got)
	}

	if _, err := d.DialContext(ctx, "tcp", "127.0.0.1:1"); err == nil {
		t.Error("dial to an unnamed address succeeded")
	}
}

func TestConnCloseAndUnsupportedOptions(t *testing.T) {
	t.Parallel()
	nw := NewNetwork(WithBurst(0, 0))
	nw.SetPairRate("a", "b", 100)
	nw.SetPairRate("b", "a", 100)
	p1, p2 := net.Pipe()
	defer p2.Close()
	go func() { _, _ = io.Copy(io.Discard, p2) }() // ends when the pipe closes
	c := nw.Conn("a", "b", p1)
	if err := c.(interface{ SetKeepAlive(bool) error }).SetKeepAlive(true); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SetKeepAlive on a pipe: %v, want ErrUnsupported", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 1<<16))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Write error %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the blocked Write")
	}
	if _, err := p1.Write([]byte("x")); err == nil {
		t.Error("Close did not close the wrapped connection")
	}
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
}
