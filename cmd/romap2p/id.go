package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/romap2p/romap2p/node"
)

// nodeFlags are the flags shared by every command that starts a node.
type nodeFlags struct {
	repo      string
	listen    string
	bootstrap string
	public    bool
	noDHT     bool
	security  string
}

func (f *nodeFlags) register(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}, env *cliEnv) {
	fs.StringVar(&f.repo, "repo", defaultRepo(env.getenv), "directory holding this node's identity key (env ROMAP2P_REPO)")
	fs.StringVar(&f.listen, "listen", "/ip4/0.0.0.0/tcp/0", "comma-separated TCP multiaddrs to listen on")
	fs.StringVar(&f.bootstrap, "bootstrap", "", "comma-separated multiaddrs (with /p2p/ID) of peers to join")
	fs.BoolVar(&f.public, "public-dht", false, "also bootstrap from the public IPFS DHT peers")
	fs.BoolVar(&f.noDHT, "no-dht", false, "run without a DHT (peers only from --bootstrap and peer exchange)")
	fs.StringVar(&f.security, "security", string(node.SecurityTLS), "preferred channel security: tls or noise")
}

// options turns the flags into node options.
func (f *nodeFlags) options() ([]node.Option, error) {
	key, err := loadIdentity(f.repo)
	if err != nil {
		return nil, err
	}
	hopts := []node.HostOption{node.Identity(key), node.PreferSecurity(node.Security(f.security))}
	if f.listen != "" {
		hopts = append(hopts, node.ListenAddrs(splitList(f.listen)...))
	}
	opts := []node.Option{node.WithHostOptions(hopts...)}
	boot, err := node.ParseAddrInfos(splitList(f.bootstrap))
	if err != nil {
		return nil, usageError{fmt.Sprintf("--bootstrap: %v", err)}
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
	return opts, nil
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

func idCommand() *command {
	c := &command{
		name:    "id",
		summary: "print this node's peer ID and listen multiaddrs",
		usage:   "[--json] [--repo DIR]",
		example: "  romap2p id\n  romap2p id --json --listen /ip4/127.0.0.1/tcp/4001",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := newFlagSet(c, env)
		var nf nodeFlags
		nf.register(fs, env)
		asJSON := fs.Bool("json", false, "print one JSON object")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usageError{"id takes no arguments"}
		}
		opts, err := nf.options()
		if err != nil {
			return err
		}
		n, err := node.New(ctx, append(opts, node.WithoutRouting())...)
		if err != nil {
			return err
		}
		defer n.Close()
		ai := n.AddrInfo()
		addrs := make([]string, 0, len(ai.Addrs))
		for _, a := range ai.Addrs {
			addrs = append(addrs, fmt.Sprintf("%s/p2p/%s", a, ai.ID))
		}
		if *asJSON {
			return json.NewEncoder(env.stdout).Encode(map[string]any{"id": ai.ID.String(), "addrs": addrs})
		}
		fmt.Fprintf(env.stdout, "peer ID: %s\n", ai.ID)
		for _, a := range addrs {
			fmt.Fprintf(env.stdout, "  %s\n", a)
		}
		return nil
	}
	return c
}
