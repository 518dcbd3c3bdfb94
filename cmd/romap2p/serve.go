package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/romap2p/romap2p/node"
)

func serveCommand() *command {
	c := &command{
		name:    "serve",
		summary: "serve files to whoever asks for their CIDs, until interrupted",
		usage:   "[flags] FILE...",
		example: `  romap2p serve big.iso
  romap2p serve --listen /ip4/0.0.0.0/tcp/4001 --no-dht a.bin b.bin
  romap2p serve --upload-limit 20Mbit/s --metrics 127.0.0.1:9301 big.iso`,
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := newFlagSet(c, env)
		var nf nodeFlags
		nf.register(fs, env)
		var sv serviceFlags
		sv.register(fs, env, defaultAPI)
		symbol := fs.String("symbol-size", "", "symbol size T in bytes (default 4096)")
		asJSON := fs.Bool("json", false, "print one JSON object per file instead of text")
		files, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return usageError{"serve needs at least one FILE"}
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
		opts, err := nf.options()
		if err != nil {
			return err
		}
		n, err := node.New(ctx, opts...)
		if err != nil {
			return fmt.Errorf("start node: %w", err)
		}
		defer n.Close()
		stop, err := sv.start(n, nf.repo, env)
		if err != nil {
			return err
		}
		defer stop()
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
					"get": getHint(c, addrs),
				})
			} else {
				err = printServed(env.stdout, c, f, p.Size, addrs)
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
	return c
}

// printServed tells the user what to run on other machines.
func printServed(w io.Writer, c cid.Cid, file string, size int64, addrs []string) error {
	if _, err := fmt.Fprintf(w, "%s  %s (%s)\n  get it with:  %s\n", c, file, humanBytes(float64(size)), getHint(c, addrs)); err != nil {
		return err
	}
	if len(addrs) > 1 {
		if _, err := fmt.Fprintf(w, "  other addresses of this node: %s\n", strings.Join(addrs[1:], " ")); err != nil {
			return err
		}
	}
	return nil
}

// getHint is a ready-to-paste command that fetches c from this node.
func getHint(c cid.Cid, addrs []string) string {
	if len(addrs) == 0 {
		return "romap2p get " + c.String()
	}
	return fmt.Sprintf("romap2p get %s --bootstrap %s", c, addrs[0])
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
