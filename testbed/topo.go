package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/romap2p/romap2p/treebuild"
)

// nsPrefix starts the name of every network namespace the testbed makes, so
// that `down` can find what a killed run left behind.
const nsPrefix = "rtb"

// lockPath is the lock file that keeps two testbeds from overlapping.
const lockPath = "/run/romap2p-testbed.lock"

// baseAddr is the first host address; hosts count up from it inside
// 198.18.0.0/15 (the benchmarking range).
var baseAddr = netip.MustParseAddr("198.18.0.1")

// topology is one network namespace per host, all on one bridge that lives
// in a namespace of its own. Each host's egress has an HTB tree: a parent
// class at the host's uplink and one child per destination at that pair's
// rate. The bridge side of each host's link has an HTB class at the host's
// downlink, so the host's total intake is capped.
type topology struct {
	tag   string
	m     *treebuild.RateMatrix
	addrs []netip.Addr
	made  []string // namespaces, in creation order
	lock  *os.File
	cc    string // TCP congestion control of the hosts ("": the machine's)
}

// checkTools refuses clearly when the testbed cannot run here.
func checkTools() error {
	if os.Geteuid() != 0 {
		return errors.New("the testbed needs root (it makes network namespaces and tc qdiscs); run it with sudo")
	}
	for _, t := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("the testbed needs %q (iproute2) on PATH: %w", t, err)
		}
	}
	return nil
}

// acquireLock takes the testbed's lock file. Held by another testbed, it
// says who holds it, or with wait it waits for it to be free.
func acquireLock(ctx context.Context, wait bool) (*os.File, error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		b, _ := os.ReadFile(lockPath)
		holder := strings.TrimSpace(string(b))
		if !wait {
			f.Close()
			return nil, fmt.Errorf("another testbed is running (lock %s held by pid %s); wait for it (--wait) or run `down` if it died", lockPath, holder)
		}
		if !said {
			say("waiting for the testbed of pid %s to finish", holder)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return f, nil
}

func releaseLock(f *os.File) {
	if f == nil {
		return
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

// hostAddr returns the address of host i.
func hostAddr(i int) netip.Addr {
	a := baseAddr
	for range i {
		a = a.Next()
	}
	return a
}

// sh runs one command and returns its error with its output.
func sh(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tcBatch runs tc commands in one namespace in one process.
func tcBatch(ctx context.Context, ns string, lines []string) error {
	cmd := exec.CommandContext(ctx, "tc", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("tc -n %s -batch: %w: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// bits formats a rate in bytes/s as a tc rate.
func bits(bytesPerSec float64) string {
	return fmt.Sprintf("%.0fbit", math.Max(8*bytesPerSec, 8000))
}

// burst is an HTB burst for a rate: about 2 ms of it, at least 16 KB.
func burst(bytesPerSec float64) string {
	return fmt.Sprintf("%.0fb", math.Max(bytesPerSec*0.002, 16<<10))
}

// upTopology builds the namespaces, links and shaping for m (bytes/s, caps
// applied), waiting for another testbed to finish if wait is set. On
// failure it removes what it made. The caller must Close it.
// cc, if not empty, is the TCP congestion control every host uses (a
// per-namespace setting).
func upTopology(ctx context.Context, m *treebuild.RateMatrix, wait bool, cc string) (t *topology, err error) {
	if err := checkTools(); err != nil {
		return nil, err
	}
	if m.Len() > 4000 {
		return nil, fmt.Errorf("topology: %d hosts are too many", m.Len())
	}
	lock, err := acquireLock(ctx, wait)
	if err != nil {
		return nil, err
	}
	t = &topology{tag: fmt.Sprintf("%s%d", nsPrefix, os.Getpid()), m: m, lock: lock, cc: cc}
	defer func() {
		if err != nil {
			t.Close()
			t = nil
		}
	}()
	br := t.tag + "-br"
	if err := sh(ctx, "ip", "netns", "add", br); err != nil {
		return t, err
	}
	t.made = append(t.made, br)
	for _, c := range [][]string{
		{"-n", br, "link", "add", "br0", "type", "bridge"},
		{"-n", br, "link", "set", "br0", "up"},
	} {
		if err := sh(ctx, "ip", c...); err != nil {
			return t, err
		}
	}
	for i := range m.Len() {
		t.addrs = append(t.addrs, hostAddr(i))
	}
	for i := range m.Len() {
		if err := t.addHost(ctx, i); err != nil {
			return t, err
		}
	}
	return t, nil
}

// ns returns the namespace of host i.
func (t *topology) ns(i int) string { return fmt.Sprintf("%s-%d", t.tag, i) }

// brPort returns the bridge-side link name of host i.
func (t *topology) brPort(i int) string { return fmt.Sprintf("b%dp%d", i, os.Getpid()) }

func (t *topology) addHost(ctx context.Context, i int) error {
	ns, br := t.ns(i), t.tag+"-br"
	hv, bv := fmt.Sprintf("h%dp%d", i, os.Getpid()), t.brPort(i)
	if err := sh(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	t.made = append(t.made, ns)
	for _, c := range [][]string{
		{"link", "add", hv, "type", "veth", "peer", "name", bv},
		{"link", "set", hv, "netns", ns},
		{"link", "set", bv, "netns", br},
		{"-n", ns, "link", "set", hv, "name", "eth0"},
		{"-n", ns, "addr", "add", t.addrs[i].String() + "/15", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", br, "link", "set", bv, "master", "br0"},
		{"-n", br, "link", "set", bv, "up"},
	} {
		if err := sh(ctx, "ip", c...); err != nil {
			return err
		}
	}
	if t.cc != "" {
		if err := sh(ctx, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_congestion_control="+t.cc); err != nil {
			return fmt.Errorf("congestion control %q (see /proc/sys/net/ipv4/tcp_available_congestion_control): %w", t.cc, err)
		}
	}
	m := t.m
	up := m.Uplink(i)
	// Egress of the host: class 1:1 is the uplink; 1:2 takes what matches
	// no destination (ARP and the like); 1:(10+j) is the pair to host j.
	// A child's guaranteed rate is its share of the uplink, its ceiling the
	// pair rate, so that the children together never exceed the uplink.
	var sum float64
	for j := range m.Len() {
		if j != i {
			sum += m.Rate(i, j)
		}
	}
	share := 1.0
	if sum > up {
		share = up / sum
	}
	lines := []string{
		"qdisc add dev eth0 root handle 1: htb default 2",
		fmt.Sprintf("class add dev eth0 parent 1: classid 1:1 htb rate %s ceil %s burst %s cburst %s quantum 1514",
			bits(up), bits(up), burst(up), burst(up)),
		fmt.Sprintf("class add dev eth0 parent 1:1 classid 1:2 htb rate %s ceil %s quantum 1514", bits(up*0.01), bits(up)),
	}
	for j := range m.Len() {
		if j == i {
			continue
		}
		r := m.Rate(i, j)
		lines = append(lines,
			fmt.Sprintf("class add dev eth0 parent 1:1 classid 1:%x htb rate %s ceil %s burst %s cburst %s quantum 1514",
				10+j, bits(r*share), bits(r), burst(r), burst(r)),
			fmt.Sprintf("filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst %s/32 flowid 1:%x",
				t.addrs[j], 10+j))
	}
	if err := tcBatch(ctx, ns, lines); err != nil {
		return fmt.Errorf("host %s uplink: %w", m.Name(i), err)
	}
	down := m.Downlink(i)
	if err := tcBatch(ctx, br, []string{
		fmt.Sprintf("qdisc add dev %s root handle 1: htb default 1", bv),
		fmt.Sprintf("class add dev %s parent 1: classid 1:1 htb rate %s ceil %s burst %s cburst %s quantum 1514",
			bv, bits(down), bits(down), burst(down), burst(down)),
	}); err != nil {
		return fmt.Errorf("host %s downlink: %w", m.Name(i), err)
	}
	return nil
}

// Close deletes every namespace the topology made (which removes their
// links and qdiscs) and releases the lock.
func (t *topology) Close() error {
	var errs []error
	for k := len(t.made) - 1; k >= 0; k-- {
		if err := sh(context.Background(), "ip", "netns", "del", t.made[k]); err != nil {
			errs = append(errs, err)
		}
	}
	t.made = nil
	releaseLock(t.lock)
	t.lock = nil
	return errors.Join(errs...)
}

// command returns a command that runs name in host i's namespace.
func (t *topology) command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", t.ns(i), name}, args...)...)
}

// linkBytes are the bytes a host's link carried: sent through its uplink,
// received through its downlink (from the qdisc counters), and the TCP
// segments its kernel sent again (RetransSegs of its /proc/net/snmp).
type linkBytes struct{ Sent, Recv, Retrans int64 }

// counters reads every host's link counters.
func (t *topology) counters(ctx context.Context) ([]linkBytes, error) {
	out := make([]linkBytes, t.m.Len())
	for i := range t.m.Len() {
		s, err := rootBytes(ctx, t.ns(i), "eth0")
		if err != nil {
			return nil, err
		}
		r, err := rootBytes(ctx, t.tag+"-br", t.brPort(i))
		if err != nil {
			return nil, err
		}
		rt, err := t.retransSegs(ctx, i)
		if err != nil {
			return nil, err
		}
		out[i] = linkBytes{Sent: s, Recv: r, Retrans: rt}
	}
	return out, nil
}

// retransSegs reads how many TCP segments host i's kernel has sent again.
func (t *topology) retransSegs(ctx context.Context, i int) (int64, error) {
	out, err := t.command(ctx, i, "cat", "/proc/net/snmp").Output()
	if err != nil {
		return 0, fmt.Errorf("tcp counters of host %d: %w", i, err)
	}
	return parseRetransSegs(out)
}

// parseRetransSegs finds RetransSegs in the text of /proc/net/snmp: a
// "Tcp:" line of names followed by a "Tcp:" line of values.
func parseRetransSegs(snmp []byte) (int64, error) {
	var names []string
	for _, line := range strings.Split(string(snmp), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for j, n := range names {
			if n == "RetransSegs" && j < len(f) {
				v, err := strconv.ParseInt(f[j], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("RetransSegs %q: %w", f[j], err)
				}
				return v, nil
			}
		}
		break
	}
	return 0, errors.New("no RetransSegs in /proc/net/snmp")
}

// rootBytes returns the byte counter of a device's root qdisc.
func rootBytes(ctx context.Context, ns, dev string) (int64, error) {
	cmd := exec.CommandContext(ctx, "tc", "-n", ns, "-s", "-j", "qdisc", "show", "dev", dev)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("tc counters of %s in %s: %w: %s", dev, ns, err, strings.TrimSpace(stderr.String()))
	}
	var qs []struct {
		Root  bool  `json:"root"`
		Bytes int64 `json:"bytes"`
	}
	if err := json.Unmarshal(out, &qs); err != nil {
		return 0, fmt.Errorf("tc counters of %s in %s: %w", dev, ns, err)
	}
	for _, q := range qs {
		if q.Root {
			return q.Bytes, nil
		}
	}
	return 0, fmt.Errorf("tc counters of %s in %s: no root qdisc", dev, ns)
}

// downlinkBytes reads every host's downlink counter with one tc call (all
// ports live in the bridge's namespace), indexed by host.
func (t *topology) downlinkBytes(ctx context.Context) ([]int64, error) {
	out, err := exec.CommandContext(ctx, "tc", "-n", t.tag+"-br", "-s", "-j", "qdisc", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("tc downlink counters: %w", err)
	}
	var qs []struct {
		Dev   string `json:"dev"`
		Root  bool   `json:"root"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal(out, &qs); err != nil {
		return nil, fmt.Errorf("tc downlink counters: %w", err)
	}
	port := map[string]int64{}
	for _, q := range qs {
		if q.Root {
			port[q.Dev] = q.Bytes
		}
	}
	res := make([]int64, t.m.Len())
	for i := range res {
		res[i] = port[t.brPort(i)]
	}
	return res, nil
}

// staleNamespaces lists namespaces a previous testbed left behind.
func staleNamespaces(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && strings.HasPrefix(f[0], nsPrefix) && strings.Contains(f[0], "-") {
			names = append(names, f[0])
		}
	}
	return names, nil
}
