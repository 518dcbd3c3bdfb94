package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// maxStatusBytes bounds the API answer status reads.
const maxStatusBytes = 16 << 20

func statusCommand() *command {
	c := &command{
		name:    "status",
		summary: "show the sessions of a running node (serve, get --keep-serving)",
		usage:   "[flags]",
		example: `  romap2p status
  romap2p status --json
  romap2p status --api 127.0.0.1:5301`,
	}
	c.setup = func(fs *pflag.FlagSet, env *cliEnv) func(context.Context, []string) error {
		repo := fs.String("repo", defaultRepo(env.getenv), "repo of the running node, where it records its API address (env ROMAP2P_REPO)")
		api := fs.String("api", "", "address of the node's API (default: from the repo, env ROMAP2P_API, else "+defaultAPI+")")
		asJSON := fs.Bool("json", false, "print the node's JSON answer")
		return func(ctx context.Context, pos []string) error {
			if len(pos) > 0 {
				return usageError{"status takes no arguments"}
			}
			addr := apiAddress(*api, *repo, env.getenv)
			st, raw, err := fetchStatus(ctx, addr)
			if err != nil {
				return err
			}
			if *asJSON {
				_, err := env.stdout.Write(raw)
				return err
			}
			return printStatus(env.stdout, st)
		}
	}
	return c
}

// fetchStatus asks the node at addr for its status.
func fetchStatus(ctx context.Context, addr string) (statusJSON, []byte, error) {
	var st statusJSON
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+statusPath, nil)
	if err != nil {
		return st, nil, usageError{fmt.Sprintf("--api %q: %v", addr, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, nil, fmt.Errorf("no node answers at %s (is `romap2p serve` running?): %w", addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes+1))
	if err != nil {
		return st, nil, fmt.Errorf("status from %s: %w", addr, err)
	}
	if len(raw) > maxStatusBytes {
		return st, nil, fmt.Errorf("status from %s: answer larger than %d bytes", addr, maxStatusBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return st, nil, fmt.Errorf("status from %s: %s", addr, resp.Status)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("status from %s: %w", addr, err)
	}
	return st, raw, nil
}

// printStatus writes the sessions as a table.
func printStatus(w io.Writer, st statusJSON) error {
	fmt.Fprintf(w, "peer %s\n", st.PeerID)
	if len(st.Sessions) == 0 {
		_, err := fmt.Fprintln(w, "no sessions")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CID\tNAME\tROLE\tPROGRESS\tRATE\tUPLOADED\tPARENTS\tCHILDREN")
	for _, s := range st.Sessions {
		var ps []string
		for _, u := range peersOf(s.Upstreams) {
			ps = append(ps, shortID(u))
		}
		parents := strings.Join(ps, ",")
		if parents == "" {
			parents = "-"
		}
		rate := humanRate(s.GoodputBps)
		if s.Role != "fetching" || s.Done {
			rate = "done"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f%%\t%s\t%s\t%s\t%d\n", s.CID, orDash(s.Name), s.Role, s.Percent,
			rate, humanBytes(float64(s.UploadedBytes)), parents, len(peersOf(s.Children)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range st.Sessions {
		for _, b := range s.Blamed {
			if _, err := fmt.Fprintf(w, "%s: blamed %s: %s\n", s.CID, b.Peer, b.Reason); err != nil {
				return err
			}
		}
	}
	return nil
}

// shortID abbreviates a peer ID string.
func shortID(s string) string {
	if len(s) > 8 {
		return "…" + s[len(s)-6:]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// peersOf lists the distinct peers of links (one link per stripe),
// probes left out, in order of first appearance.
func peersOf(links []linkJSON) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range links {
		if !l.Probe && !seen[l.Peer] {
			seen[l.Peer] = true
			out = append(out, l.Peer)
		}
	}
	return out
}
