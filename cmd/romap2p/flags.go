package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/shaper"
	"github.com/romap2p/romap2p/node"
)

// nodeFlags are the flags shared by every command that starts a node.
type nodeFlags struct {
	repo        string
	listen      string
	bootstrap   string
	public      bool
	noDHT       bool
	security    string
	stripes     int
	maxChildren int
	uploadLimit string
}

func (f *nodeFlags) register(fs *flag.FlagSet, env *cliEnv) {
	fs.StringVar(&f.repo, "repo", defaultRepo(env.getenv), "directory holding this node's identity key and API address (env ROMAP2P_REPO)")
	fs.StringVar(&f.listen, "listen", "/ip4/0.0.0.0/tcp/0", "comma-separated TCP multiaddrs to listen on")
	fs.StringVar(&f.bootstrap, "bootstrap", "", "comma-separated multiaddrs (with /p2p/ID) of peers to join")
	fs.BoolVar(&f.public, "public-dht", false, "also bootstrap from the public IPFS DHT peers")
	fs.BoolVar(&f.noDHT, "no-dht", false, "run without a DHT (peers only from --bootstrap and peer exchange)")
	fs.StringVar(&f.security, "security", string(node.SecurityTLS), "preferred channel security: tls or noise")
	fs.IntVar(&f.stripes, "stripes", 8, "cut the symbol stream into `K` stripes, each with its own tree (1: the paper's single tree)")
	fs.IntVar(&f.maxChildren, "max-children", 8, "most children this node feeds at once")
	fs.StringVar(&f.uploadLimit, "upload-limit", "", "cap on this node's total upload `RATE` (e.g. 2MB/s, 10Mbit/s); empty: none")
}

// options turns the flags into node options.
func (f *nodeFlags) options() ([]node.Option, error) {
	switch node.Security(f.security) {
	case node.SecurityTLS, node.SecurityNoise:
	default:
		return nil, usageError{fmt.Sprintf("--security: %q is neither tls nor noise", f.security)}
	}
	if f.stripes < 1 || f.stripes > 256 {
		return nil, usageError{fmt.Sprintf("--stripes: %d outside 1..256", f.stripes)}
	}
	if f.maxChildren < 1 {
		return nil, usageError{fmt.Sprintf("--max-children: %d must be at least 1", f.maxChildren)}
	}
	boot, err := f.bootstrapPeers()
	if err != nil {
		return nil, err
	}
	var limit float64
	if f.uploadLimit != "" {
		if limit, err = parseRate(f.uploadLimit); err != nil {
			return nil, usageError{fmt.Sprintf("--upload-limit: %v", err)}
		}
	}
	key, err := loadIdentity(f.repo)
	if err != nil {
		return nil, err
	}
	hopts := []node.HostOption{node.Identity(key), node.PreferSecurity(node.Security(f.security))}
	if f.listen != "" {
		hopts = append(hopts, node.ListenAddrs(splitList(f.listen)...))
	}
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
	if limit > 0 {
		opts = append(opts, node.WithShaper(uploadLimiter(limit)))
	}
	return opts, nil
}

// bootstrapPeers parses --bootstrap.
func (f *nodeFlags) bootstrapPeers() ([]peer.AddrInfo, error) {
	boot, err := node.ParseAddrInfos(splitList(f.bootstrap))
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
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err // the flag set has printed the help
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if f := fs.Lookup("log-level"); f != nil && f.Value.String() != "" {
		if err := setLogLevel(f.Value.String()); err != nil {
			return nil, usageError{fmt.Sprintf("--log-level: %v", err)}
		}
	}
	return pos, nil
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
