package mdns

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/miekg/dns"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

// fakeHost is a Host with fixed addresses.
type fakeHost struct {
	id    peer.ID
	addrs []ma.Multiaddr
}

func (h fakeHost) ID() peer.ID           { return h.id }
func (h fakeHost) Addrs() []ma.Multiaddr { return h.addrs }

func newFakeHost(t *testing.T, addrs ...string) fakeHost {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	h := fakeHost{id: id}
	for _, a := range addrs {
		h.addrs = append(h.addrs, ma.StringCast(a))
	}
	return h
}

func TestParseTXT(t *testing.T) {
	a, b := newFakeHost(t), newFakeHost(t)
	got := ParseTXT([]string{
		"dnsaddr=/ip4/192.0.2.1/tcp/4717/p2p/" + a.id.String(),
		"dnsaddr=/ip4/192.0.2.2/tcp/4717/p2p/" + a.id.String(),
		"dnsaddr=/ip4/192.0.2.3/tcp/1", // no peer ID
		"dnsaddr=not a multiaddr",      // garbage
		"other=/ip4/192.0.2.4/tcp/1/p2p/" + b.id.String(),
		"dnsaddr=/ip6/::1/tcp/5/p2p/" + b.id.String(),
	})
	if len(got) != 2 || got[0].ID != a.id || len(got[0].Addrs) != 2 || got[1].ID != b.id || len(got[1].Addrs) != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := New(context.Background(), newFakeHost(t, "/ip4/127.0.0.1/tcp/1"), WithInterval(0)); err == nil {
		t.Error("zero interval accepted")
	}
	if _, err := New(context.Background(), newFakeHost(t, "/ip4/127.0.0.1/tcp/1"), WithQueryTimeout(time.Minute)); err == nil {
		t.Error("query timeout beyond the interval accepted")
	}
}

const childEnv = "ROMAP2P_MDNS_NETNS_CHILD"

// TestDiscoveryNetns runs the discovery tests in a fresh network
// namespace whose loopback carries multicast, so nothing leaves the test
// and nothing else on the machine answers.
func TestDiscoveryNetns(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		t.Run("two services find each other", testTwoServices)
		t.Run("a spec responder is found", testSpecResponder)
		t.Run("our answer meets the spec", testSpecQuery)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip tool")
	}
	ns := fmt.Sprintf("romap2p-mdns-%d", os.Getpid())
	if out, err := exec.Command(ipTool, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(ipTool, "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "lo", "multicast", "on"},
		{"-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo"},
	} {
		if out, err := exec.Command(ipTool, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	cmd := exec.Command(ipTool, "netns", "exec", ns, os.Args[0], "-test.run=^TestDiscoveryNetns$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("namespace run: %v", err)
	}
}

func loopback(t *testing.T) *net.Interface {
	t.Helper()
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	return ifi
}

func testTwoServices(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	lo := loopback(t)
	a := newFakeHost(t, "/ip4/127.0.0.1/tcp/4717", "/ip4/0.0.0.0/tcp/4717")
	b := newFakeHost(t, "/ip4/127.0.0.1/tcp/4718")
	foundA, foundB := make(chan peer.AddrInfo, 4), make(chan peer.AddrInfo, 4)
	opts := []Option{WithInterface(lo), WithInterval(300 * time.Millisecond), WithQueryTimeout(200 * time.Millisecond)}
	sa, err := New(context.Background(), a, append(opts, WithFound(func(ai peer.AddrInfo) { foundA <- ai }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := New(context.Background(), b, append(opts, WithFound(func(ai peer.AddrInfo) { foundB <- ai }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, c := range []struct {
		ch   chan peer.AddrInfo
		want fakeHost
	}{{foundA, b}, {foundB, a}} {
		select {
		case ai := <-c.ch:
			if ai.ID != c.want.id || len(ai.Addrs) != 1 || !ai.Addrs[0].Equal(ma.StringCast("/ip4/127.0.0.1/tcp/"+port(c.want))) {
				t.Errorf("found %v, want %s at its loopback address only", ai, c.want.id)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not found", c.want.id)
		}
	}
}

func port(h fakeHost) string {
	p, _ := h.addrs[0].ValueForProtocol(ma.P_TCP)
	return p
}

var mdnsGroup = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}

// testSpecResponder: a responder written from the specification alone
// (as go-libp2p's answers: PTR to a random instance, TXT dnsaddr=, SRV,
// A) is found by the service.
func testSpecResponder(t *testing.T) {
	lo := loopback(t)
	other := newFakeHost(t, "/ip4/127.0.0.1/tcp/4001")
	conn, err := net.ListenMulticastUDP("udp4", lo, mdnsGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 9000)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, from, err := conn.ReadFromUDP(buf)
			select {
			case <-stop:
				return
			default:
			}
			if err != nil {
				continue
			}
			var q dns.Msg
			if q.Unpack(buf[:n]) != nil || q.Response || len(q.Question) == 0 || q.Question[0].Name != "_p2p._udp.local." {
				continue
			}
			inst := "abcdefghijklmnopqrstuvwxyz012345._p2p._udp.local."
			hostName := "abcdefghijklmnopqrstuvwxyz012345.local."
			hdr := func(name string, typ uint16) dns.RR_Header {
				return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 120}
			}
			r := new(dns.Msg)
			r.Response, r.Authoritative = true, true
			r.Answer = []dns.RR{&dns.PTR{Hdr: hdr("_p2p._udp.local.", dns.TypePTR), Ptr: inst}}
			r.Extra = []dns.RR{
				&dns.TXT{Hdr: hdr(inst, dns.TypeTXT), Txt: []string{"dnsaddr=/ip4/127.0.0.1/tcp/4001/p2p/" + other.id.String()}},
				&dns.SRV{Hdr: hdr(inst, dns.TypeSRV), Target: hostName, Port: 4001},
				&dns.A{Hdr: hdr(hostName, dns.TypeA), A: net.IPv4(127, 0, 0, 1)},
			}
			b, err := r.Pack()
			if err != nil {
				continue
			}
			_, _ = conn.WriteToUDP(b, mdnsGroup)
			_, _ = conn.WriteToUDP(b, from)
		}
	}()
	defer func() { close(stop); <-done }()

	self := newFakeHost(t, "/ip4/127.0.0.1/tcp/4800")
	found := make(chan peer.AddrInfo, 4)
	s, err := New(context.Background(), self, WithInterface(lo), WithoutAnnounce(), WithInterval(300*time.Millisecond),
		WithQueryTimeout(200*time.Millisecond), WithFound(func(ai peer.AddrInfo) { found <- ai }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case ai := <-found:
		if ai.ID != other.id {
			t.Errorf("found %v", ai)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("spec responder not found")
	}
}

// testSpecQuery: a plain DNS query for _p2p._udp.local. gets the service's
// instance with TXT dnsaddr= records holding its full addresses.
func testSpecQuery(t *testing.T) {
	lo := loopback(t)
	self := newFakeHost(t, "/ip4/127.0.0.1/tcp/4900")
	s, err := New(context.Background(), self, WithInterface(lo), WithInterval(time.Hour), WithQueryTimeout(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion("_p2p._udp.local.", dns.TypePTR)
	q.Question[0].Qclass |= 1 << 15 // unicast answer, RFC 6762 5.4
	q.RecursionDesired = false
	b, _ := q.Pack()
	deadline := time.Now().Add(5 * time.Second)
	var txt []string
	for time.Now().Before(deadline) && txt == nil {
		if _, err := c.WriteToUDP(b, mdnsGroup); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 9000)
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		var r dns.Msg
		if r.Unpack(buf[:n]) != nil {
			continue
		}
		for _, rr := range append(r.Answer, r.Extra...) {
			if tx, ok := rr.(*dns.TXT); ok && strings.HasSuffix(tx.Hdr.Name, "._p2p._udp.local.") {
				txt = tx.Txt
			}
		}
	}
	want := "dnsaddr=/ip4/127.0.0.1/tcp/4900/p2p/" + self.id.String()
	if len(txt) != 1 || txt[0] != want {
		t.Fatalf("TXT %q, want [%q]", txt, want)
	}
}
