package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/romap2p/romap2p/node"
)

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
		pos, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		if len(pos) > 0 {
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
