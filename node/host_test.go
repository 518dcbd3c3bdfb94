package node

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

func newLoopbackHost(t testing.TB) host.Host {
	t.Helper()
	h, err := NewHost(ListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func TestHostIsTCPOnly(t *testing.T) {
	h := newLoopbackHost(t)
	for _, a := range h.Addrs() {
		if _, err := a.ValueForProtocol(6 /* tcp */); err != nil {
			t.Errorf("listen address %s is not TCP", a)
		}
	}
	if _, err := NewHost(ListenAddrs("/ip4/127.0.0.1/udp/0/quic-v1")); err == nil {
		t.Fatal("a QUIC listen address was accepted by a TCP-only host")
	}
}

// TestDHTProvideFind starts ten hosts on loopback, joins them into one DHT
// through a single bootstrap peer, has one of them provide a CID and checks
// that every other one finds it with FindProvidersAsync.
func TestDHTProvideFind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 10
	hosts := make([]host.Host, n)
	for i := range hosts {
		hosts[i] = newLoopbackHost(t)
	}
	boot := peer.AddrInfo{ID: hosts[0].ID(), Addrs: hosts[0].Addrs()}
	dhts := make([]interface {
		Provide(context.Context, cid.Cid, bool) error
		FindProvidersAsync(context.Context, cid.Cid, int) <-chan peer.AddrInfo
		Close() error
	}, n)
	for i, h := range hosts {
		var opts []DHTOption
		if i > 0 {
			opts = append(opts, Bootstrap(boot))
			if err := h.Connect(ctx, boot); err != nil {
				t.Fatal(err)
			}
		}
		d, err := NewDHT(ctx, h, append(opts, ProtocolPrefix("/romatest"))...)
		if err != nil {
			t.Fatal(err)
		}
		dhts[i] = d
		t.Cleanup(func() { _ = d.Close() })
	}
	mh, err := multihash.Sum([]byte("romap2p provide test"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.DagCBOR, mh)

	provider := n - 1
	start := time.Now()
	// Provide fails while the routing table is still empty: retry briefly.
	for {
		err := dhts[provider].Provide(ctx, c, true)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("provide: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("provide took %v", time.Since(start))

	for i := 0; i < n; i++ {
		if i == provider {
			continue
		}
		found := false
		fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
		for ai := range dhts[i].FindProvidersAsync(fctx, c, 1) {
			if ai.ID == hosts[provider].ID() {
				found = true
				break
			}
		}
		fcancel()
		if !found {
			t.Errorf("node %d did not find the provider", i)
		}
	}
	t.Logf("all %d lookups done %v after start", n-1, time.Since(start))
}

const benchProto = "/roma/test/bulk/1.0.0"

// BenchmarkStreamVsTCP writes 256 MiB over one libp2p stream between two
// hosts built by NewHost, and the same over a plain loopback TCP socket pair,
// in the same run: the stream's rate is the ceiling of every later transfer.
func BenchmarkStreamVsTCP(b *testing.B) {
	const total = 256 << 20
	buf := make([]byte, 64<<10)
	_, _ = rand.Read(buf)

	for _, sec := range []Security{SecurityTLS, SecurityNoise} {
		b.Run("libp2p-stream-"+string(sec), func(b *testing.B) { benchStream(b, sec, buf, total) })
	}

	b.Run("tcp-socket", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		done := make(chan int64, 1)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				n, _ := io.Copy(io.Discard, c)
				_ = c.Close()
				done <- n
			}
		}()
		b.SetBytes(total)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			for sent := int64(0); sent < total; sent += int64(len(buf)) {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			_ = c.(*net.TCPConn).CloseWrite()
			if n := <-done; n != total {
				b.Fatalf("received %d bytes, want %d", n, total)
			}
			_ = c.Close()
		}
	})
}

func benchStream(b *testing.B, sec Security, buf []byte, total int64) {
	mk := func() host.Host {
		h, err := NewHost(ListenAddrs("/ip4/127.0.0.1/tcp/0"), PreferSecurity(sec))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Close() })
		return h
	}
	a, z := mk(), mk()
	done := make(chan int64, 1)
	z.SetStreamHandler(benchProto, func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		_ = s.Close()
		done <- n
	})
	ctx := context.Background()
	if err := a.Connect(ctx, peer.AddrInfo{ID: z.ID(), Addrs: z.Addrs()}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := a.NewStream(ctx, z.ID(), benchProto)
		if err != nil {
			b.Fatal(err)
		}
		for sent := int64(0); sent < total; sent += int64(len(buf)) {
			if _, err := s.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		_ = s.CloseWrite()
		if n := <-done; n != total {
			b.Fatalf("received %d bytes, want %d", n, total)
		}
		_ = s.Close()
	}
}
