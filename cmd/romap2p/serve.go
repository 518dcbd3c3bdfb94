package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/spf13/pflag"

	"github.com/romap2p/romap2p/node"
)

func serveCommand() *command {
	c := &command{
		name:    "serve",
		summary: "serve files to whoever asks for their CIDs, until interrupted",
		usage:   "[flags] FILE...",
		example: `  romap2p serve big.iso
  romap2p serve --listen /ip4/0.0.0.0/tcp/4800 --no-dht a.bin b.bin
  romap2p serve --upload-limit 20Mbit/s --metrics 127.0.0.1:9301 big.iso`,
	}
	c.setup = func(fs *pflag.FlagSet, env *cliEnv) func(context.Context, []string) error {
		var nf nodeFlags
		nf.register(fs, env, true)
		var sv serviceFlags
		sv.register(fs, env, defaultAPI)
		symbol := fs.String("symbol-size", "", "symbol size T in bytes (default 4096)")
		asJSON := fs.Bool("json", false, "print one JSON object per file instead of text")
		return func(ctx context.Context, files []string) error {
			if len(files) == 0 {
				return usageError{"serve needs at least one FILE"}
			}
			if err := nf.check(); err != nil {
				return err
			}
			var addOpts []node.AddOption
			if *symbol != "" {
				t, err := parseSize(*symbol)
				if err != nil || t < 16 || t > 65535 {
					return usageError{fmt.Sprintf("--symbol-size: %q must be 16..65535 bytes", *symbol)}
				}
				addOpts = append(addOpts, node.SymbolSize(int(t)))
			}
			for _, f := range files {
				if st, err := os.Stat(f); err != nil {
					return err
				} else if !st.Mode().IsRegular() {
					return fmt.Errorf("%s: not a regular file", f)
				}
			}
			opts, repo, err := nf.options(busyRefuse, env.stderr)
			if err != nil {
				return err
			}
			defer repo.Close()
			if err := repo.setServing(files); err != nil {
				return err
			}
			n, err := node.New(ctx, opts...)
			if err != nil {
				return fmt.Errorf("start node: %w", err)
			}
			defer n.Close()
			stop, err := sv.start(n, repo.dir, env)
			if err != nil {
				return err
			}
			defer stop()
			if !nf.noMDNS {
				lan, err := startLAN(ctx, n)
				if err != nil {
					fmt.Fprintf(env.stderr, "romap2p: no LAN discovery: %v\n", err)
				} else {
					defer lan.Close()
				}
			}
			addrs := usableAddrs(n.AddrInfo())
			for _, f := range files {
				c, err := n.Add(ctx, f, addOpts...)
				if err != nil {
					return err
				}
				p, _ := n.Progress(c)
				if *asJSON {
					err = json.NewEncoder(env.stdout).Encode(map[string]any{
						"cid": c.String(), "file": f, "name": p.Name, "size": p.Size, "addrs": addrs,
						"get": getHint(env.self, c, addrs),
					})
				} else {
					err = printServed(env.stdout, env.self, c, f, p.Size, addrs)
				}
				if err != nil {
					return fmt.Errorf("write: %w", err)
				}
			}
			if !*asJSON {
				fmt.Fprintln(env.stdout, "serving; press Ctrl-C to stop")
			}
			<-ctx.Done()
			fmt.Fprintln(env.stderr, "romap2p serve: shutting down")
			return nil
		}
	}
	return c
}

// printServed tells the user what to run on other machines.
func printServed(w io.Writer, self string, c cid.Cid, file string, size int64, addrs []string) error {
	if _, err := fmt.Fprintf(w, "%s  %s (%s)\n  get it with:  %s\n", c, file, humanBytes(float64(size)), getHint(self, c, addrs)); err != nil {
		return err
	}
	if len(addrs) > 1 {
		if _, err := fmt.Fprintf(w, "  other addresses of this node: %s\n", strings.Join(addrs[1:], " ")); err != nil {
			return err
		}
	}
	return nil
}

// getHint is a ready-to-paste command that fetches c from this node; self
// is how this program is invoked (see selfCommand).
func getHint(self string, c cid.Cid, addrs []string) string {
	if self == "" {
		self = "romap2p"
	}
	if len(addrs) == 0 {
		return self + " get " + c.String()
	}
	return fmt.Sprintf("%s get %s --bootstrap %s", self, c, addrs[0])
}

// selfCommand is how a shell on this machine runs this program: its bare
// name if the PATH finds this very executable under it, else its absolute
// path (quoted for a POSIX shell if need be).
func selfCommand(arg0 string) string {
	exe, err := os.Executable()
	if err != nil {
		return shellQuote(arg0)
	}
	base := filepath.Base(arg0)
	if p, err := exec.LookPath(base); err == nil && !strings.ContainsRune(base, os.PathSeparator) {
		if a, err1 := os.Stat(p); err1 == nil {
			if b, err2 := os.Stat(exe); err2 == nil && os.SameFile(a, b) {
				return base
			}
		}
	}
	return shellQuote(exe)
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain
// path characters.
func shellQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// usableAddrs lists the full multiaddrs (with /p2p/) other peers can dial,
// best first: public, then private, then loopback; unspecified addresses
// (0.0.0.0, ::) and link-local ones are left out.
func usableAddrs(ai peer.AddrInfo) []string {
	type ranked struct {
		s    string
		rank int
	}
	var rs []ranked
	for _, a := range ai.Addrs {
		if manet.IsIPUnspecified(a) || manet.IsIP6LinkLocal(a) {
			continue
		}
		rank := 1
		switch {
		case manet.IsIPLoopback(a):
			rank = 2
		case manet.IsPublicAddr(a):
			rank = 0
		}
		rs = append(rs, ranked{fmt.Sprintf("%s/p2p/%s", a, ai.ID), rank})
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].rank < rs[j].rank })
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.s)
	}
	return out
}

// serviceFlags are the flags of commands that keep a node running: its
// local API and its Prometheus metrics.
type serviceFlags struct {
	api     string
	metrics string
}

func (f *serviceFlags) register(fs interface {
	StringVar(*string, string, string, string)
}, env *cliEnv, apiDefault string) {
	if v := env.getenv("ROMAP2P_API"); v != "" && apiDefault != "" {
		apiDefault = v
	}
	fs.StringVar(&f.api, "api", apiDefault, "local status API `ADDR` (a free port if taken; \"off\" disables; env ROMAP2P_API)")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics")
}

// start runs the API and the metrics endpoint for n; stop ends them.
func (f *serviceFlags) start(n *node.Node, repo string, env *cliEnv) (stop func(), err error) {
	var closers []io.Closer
	stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close()
		}
	}
	if f.api != "" && !strings.EqualFold(f.api, "off") {
		a, err := startAPI(n, f.api, repo)
		if err != nil {
			return nil, err
		}
		closers = append(closers, a)
		fmt.Fprintf(env.stderr, "romap2p: status API on http://%s%s\n", a.addr, statusPath)
	}
	if f.metrics != "" {
		m, err := startMetrics(n, f.metrics)
		if err != nil {
			stop()
			return nil, err
		}
		closers = append(closers, m)
		fmt.Fprintf(env.stderr, "romap2p: metrics on http://%s/metrics\n", m.addr)
	}
	return stop, nil
}
