package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/spf13/pflag"
)

func idCommand() *command {
	c := &command{
		name:    "id",
		summary: "print this node's peer ID and the multiaddrs its config listens on",
		usage:   "[flags]",
		example: "  romap2p id\n  romap2p id --json --repo ~/other-repo",
	}
	c.setup = func(fs *pflag.FlagSet, env *cliEnv) func(context.Context, []string) error {
		repo := fs.String("repo", defaultRepo(env.getenv), "`DIR` holding this node's identity key and config (env ROMAP2P_REPO)")
		asJSON := fs.Bool("json", false, "print one JSON object")
		return func(ctx context.Context, pos []string) error {
			if len(pos) > 0 {
				return usageError{"id takes no arguments"}
			}
			r, err := openRepo(*repo, busyShare)
			if err != nil {
				return err
			}
			defer r.Close()
			id, err := peer.IDFromPrivateKey(r.key)
			if err != nil {
				return fmt.Errorf("identity: %w", err)
			}
			ai := peer.AddrInfo{ID: id}
			for _, s := range r.cfg.Listen {
				a, err := ma.NewMultiaddr(s)
				if err != nil {
					return fmt.Errorf("repo config %s: %w", r.configPath(), err)
				}
				ai.Addrs = append(ai.Addrs, a)
			}
			if ifaddrs, err := manet.InterfaceMultiaddrs(); err == nil {
				if res, err := manet.ResolveUnspecifiedAddresses(ai.Addrs, ifaddrs); err == nil {
					ai.Addrs = res
				}
			}
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
	}
	return c
}
