package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/spf13/pflag"

	"github.com/romap2p/romap2p/internal/shaper"
	"github.com/romap2p/romap2p/node"
	"github.com/romap2p/romap2p/protocol"
)

// nodeFlags are the flags shared by every command that starts a node.
type nodeFlags struct {
	repo        string
	listen      []string
	bootstrap   []string
	public      bool
	noDHT       bool
	noMDNS      bool
	security    string
	stripes     int
	maxChildren int
	uploadLimit string
	fs          *pflag.FlagSet
	// wrap, when set, wraps the writer of every symbols stream the node
	// feeds, outside the upload limit (node.WithShaper keeps only the last
	// wrapper it is given, so the two are chained here).
	wrap func(from, to peer.ID, w io.Writer) io.Writer
}

// register adds the node flags to fs; withMDNS adds --no-mdns (commands
// that stay up long enough to be found on the LAN).
func (f *nodeFlags) register(fs *pflag.FlagSet, env *cliEnv, withMDNS bool) {
	f.fs = fs
	fs.StringVar(&f.repo, "repo", defaultRepo(env.getenv), "`DIR` holding this node's identity key, config and API address (env ROMAP2P_REPO)")
	fs.StringSliceVarP(&f.listen, "listen", "l", nil, "TCP multiaddrs to listen on, comma-separated (default: \"listen\" in the repo's config.json, first created with port "+fmt.Sprint(defaultPort)+")")
	fs.StringSliceVarP(&f.bootstrap, "bootstrap", "b", nil, "multiaddrs (with /p2p/ID) of peers to join, comma-separated or repeated")
	fs.BoolVar(&f.public, "public-dht", false, "also bootstrap from the public IPFS DHT peers")
	fs.BoolVar(&f.noDHT, "no-dht", false, "run without a DHT (peers only from --bootstrap, mDNS and peer exchange)")
	if withMDNS {
		fs.BoolVar(&f.noMDNS, "no-mdns", false, "do not announce or look for peers on the local network (mDNS)")
	}
	fs.StringVar(&f.security, "security", string(node.SecurityTLS), "preferred channel security: tls or noise")
	fs.IntVar(&f.stripes, "stripes", node.DefaultStripes, fmt.Sprintf("cut the symbol stream into `K` stripes (1..%d), each with its own tree (1: the paper's single tree)", protocol.MaxStripes))
	fs.IntVar(&f.maxChildren, "max-children", 8, "most children this node feeds at once")
	fs.StringVar(&f.uploadLimit, "upload-limit", "", "cap on this node's total upload `RATE` (e.g. 2MB/s, 10Mbit/s); empty: none")
}

// check validates the flags that need no repo: a usage error at once.
func (f *nodeFlags) check() error {
	switch node.Security(f.security) {
	case node.SecurityTLS, node.SecurityNoise:
	default:
		return usageError{fmt.Sprintf("--security: %q is neither tls nor noise", f.security)}
	}
	if f.stripes < 1 || f.stripes > protocol.MaxStripes {
		return usageError{fmt.Sprintf("--stripes: %d outside 1..%d", f.stripes, protocol.MaxStripes)}
	}
	if f.maxChildren < 1 {
		return usageError{fmt.Sprintf("--max-children: %d must be at least 1", f.maxChildren)}
	}
	if _, err := f.bootstrapPeers(); err != nil {
		return err
	}
	if f.uploadLimit != "" {
		if _, err := parseRate(f.uploadLimit); err != nil {
			return usageError{fmt.Sprintf("--upload-limit: %v", err)}
		}
	}
	if _, err := parseListen(f.listen); err != nil {
		return err
	}
	return nil
}

// options opens the repo (see openRepo for busy) and turns the flags into
// node options. The caller closes the repo when the node is gone.
func (f *nodeFlags) options(busy busyPolicy, notes io.Writer) ([]node.Option, *repoHandle, error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	boot, _ := f.bootstrapPeers()
	r, err := openRepo(f.repo, busy)
	if err != nil {
		return nil, nil, err
	}
	opts, err := f.nodeOptions(r, boot, notes)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return opts, r, nil
}

func (f *nodeFlags) nodeOptions(r *repoHandle, boot []peer.AddrInfo, notes io.Writer) ([]node.Option, error) {
	self, err := peer.IDFromPrivateKey(r.key)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	for _, b := range boot {
		if b.ID == self {
			return nil, usageError{fmt.Sprintf("--bootstrap: %s is this node's own peer ID (repo %s); give the address of another node", b.ID, f.repo)}
		}
	}
	if r.fresh && notes != nil {
		fmt.Fprintf(notes, "romap2p: repo %s is in use by another romap2p process%s; this run uses a fresh identity %s (--repo DIR to keep one)\n", f.repo, r.holderNote(), self)
	}
	listen, err := f.listenAddrs(r, notes)
	if err != nil {
		return nil, err
	}
	var limit float64
	if f.uploadLimit != "" {
		limit, _ = parseRate(f.uploadLimit)
	}
	hopts := []node.HostOption{node.Identity(r.key), node.PreferSecurity(node.Security(f.security)), node.ListenAddrs(listen...)}
	opts := []node.Option{
		node.WithHostOptions(hopts...),
		node.WithStripes(f.stripes),
		node.WithMaxChildren(f.maxChildren),
	}
	if len(boot) > 0 {
		opts = append(opts, node.WithBootstrap(boot...))
	}
	switch {
	case f.noDHT:
		opts = append(opts, node.WithoutRouting())
	case f.public:
		opts = append(opts, node.WithDHTOptions(node.PublicBootstrap()))
	}
	shape := f.wrap
	if limit > 0 {
		shape = chainShapers(uploadLimiter(limit), f.wrap)
	}
	if shape != nil {
		opts = append(opts, node.WithShaper(shape))
	}
	return opts, nil
}

// listenAddrs chooses where the node listens: --listen, else the repo's
// config; a process with a fresh identity (another one holds the repo)
// and a configured port already taken fall back to a free port.
func (f *nodeFlags) listenAddrs(r *repoHandle, notes io.Writer) ([]string, error) {
	if f.fs != nil && f.fs.Changed("listen") {
		return f.listen, nil
	}
	if r.fresh {
		return []string{anyPortAddr}, nil
	}
	addrs, err := parseListen(r.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("repo config %s: %w", r.configPath(), err)
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		l, err := manet.Listen(a)
		if err != nil {
			if notes != nil {
				fmt.Fprintf(notes, "romap2p: %s is taken (%v); listening on a free port instead\n", a, errors.Unwrap(err))
			}
			out = append(out, zeroPort(a).String())
			continue
		}
		_ = l.Close()
		out = append(out, a.String())
	}
	return out, nil
}

// parseListen checks listen multiaddrs.
func parseListen(list []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(list))
	for _, s := range list {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--listen: %q: %v", s, err)}
		}
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
			return nil, usageError{fmt.Sprintf("--listen: %q is not a TCP address", s)}
		}
		out = append(out, a)
	}
	return out, nil
}

// zeroPort returns a with its TCP port replaced by 0.
func zeroPort(a ma.Multiaddr) ma.Multiaddr {
	var out ma.Multiaddr
	for _, c := range a {
		if c.Protocol().Code == ma.P_TCP {
			z, err := ma.NewComponent("tcp", "0")
			if err == nil {
				c = *z
			}
		}
		out = append(out, c)
	}
	return out
}

// bootstrapPeers parses --bootstrap.
func (f *nodeFlags) bootstrapPeers() ([]peer.AddrInfo, error) {
	boot, err := node.ParseAddrInfos(splitList(strings.Join(f.bootstrap, ",")))
	if err != nil {
		return nil, usageError{fmt.Sprintf("--bootstrap: %v", err)}
	}
	return boot, nil
}

// uploadLimiter returns a stream wrapper that caps everything this node
// sends, to all peers together, at bytesPerSec. A child whose stream waits
// simply falls behind in the ring and skips ahead, as on a slow link.
func uploadLimiter(bytesPerSec float64) func(from, to peer.ID, w io.Writer) io.Writer {
	nw := shaper.NewNetwork()
	var once sync.Once
	return func(from, to peer.ID, w io.Writer) io.Writer {
		once.Do(func() { nw.SetUplink(from.String(), bytesPerSec) })
		return nw.Writer(from.String(), to.String(), w)
	}
}

// chainShapers returns a stream wrapper that applies inner, then outer
// around what inner returned; a nil outer leaves inner alone.
func chainShapers(inner, outer func(from, to peer.ID, w io.Writer) io.Writer) func(from, to peer.ID, w io.Writer) io.Writer {
	if outer == nil {
		return inner
	}
	return func(from, to peer.ID, w io.Writer) io.Writer {
		return outer(from, to, inner(from, to, w))
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseArgs parses flags anywhere among the arguments (`get CID -o x` and
// `get -o x CID` alike); everything after "--" is positional. Flag errors
// become usage errors.
func parseArgs(fs *pflag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, err // the flag set has printed the help
		}
		return nil, usageError{err.Error()}
	}
	if err := applyLogLevel(fs); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// setLogLevel applies a --log-level value: either one level for every
// romap2p subsystem ("debug"), or comma-separated subsystem=level pairs in
// the style of GOLOG_LOG_LEVEL ("roma/node=debug,swarm2=info").
func setLogLevel(v string) error {
	for _, part := range splitList(v) {
		sub, lvl, ok := strings.Cut(part, "=")
		if !ok {
			if _, err := logging.Parse(part); err != nil {
				return fmt.Errorf("level %q: %w", part, err)
			}
			if err := logging.SetLogLevelRegex("roma/.*", part); err != nil {
				return fmt.Errorf("level %q: %w", part, err)
			}
			continue
		}
		if _, err := logging.Parse(lvl); err != nil {
			return fmt.Errorf("level %q: %w", lvl, err)
		}
		if err := logging.SetLogLevel(sub, lvl); err != nil {
			return fmt.Errorf("%s: %w", sub, err)
		}
	}
	return nil
}

// sizeUnits are the suffixes parseSize accepts, longest first.
var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// parseSize reads a byte count such as 4096, 64MiB, 1.5GB or 8M (binary).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("bad size %q (want e.g. 4096, 64MiB, 1.5GB)", s)
	}
	b := v * mult
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q too large", s)
	}
	return int64(b), nil
}

// parseRate reads a rate in bytes per second: a size per second ("2MB/s",
// "512KiB/s", "1000") or a bit rate ("10Mbit/s", "1Gbit").
func parseRate(s string) (float64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"Gbit", 1e9 / 8}, {"Mbit", 1e6 / 8}, {"kbit", 1e3 / 8}, {"Kbit", 1e3 / 8}, {"bit", 1.0 / 8}} {
		if strings.HasSuffix(t, u.suffix) {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), 64)
			if err != nil || !(v > 0) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("bad rate %q", s)
			}
			return v * u.mult, nil
		}
	}
	n, err := parseSize(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad rate %q (want e.g. 2MB/s, 10Mbit/s)", s)
	}
	return float64(n), nil
}
