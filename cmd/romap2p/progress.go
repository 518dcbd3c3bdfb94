package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/node"
)

// fractionDone estimates how much of the content a session holds, in
// [0, 1]: verified blocks, or, within blocks still decoding, the share of
// the symbols needed that have arrived (whichever says more).
func fractionDone(p node.Progress) float64 {
	if p.Done && p.Err == nil && p.Role != "fetching" {
		return 1
	}
	var f float64
	if p.Size > 0 {
		f = float64(p.BytesDone) / float64(p.Size)
	}
	if p.Needed > 0 {
		// Symbols are only an estimate: stop short of 100 % until verified.
		f = math.Max(f, math.Min(float64(p.SymbolsNew)/float64(p.Needed), 0.999))
	}
	return math.Min(math.Max(f, 0), 1)
}

// humanBytes formats a byte count with binary units (go-humanize).
func humanBytes(n float64) string {
	if n <= 0 || math.IsNaN(n) {
		return "0 B"
	}
	return humanize.IBytes(uint64(n))
}

// humanRate formats a rate in bytes/s; "-" when there is none.
func humanRate(bps float64) string {
	if math.IsInf(bps, 0) || math.IsNaN(bps) || bps <= 0 {
		return "-"
	}
	return humanBytes(bps) + "/s"
}

// humanDuration formats an ETA: 45s, 3m07s, 2h05m.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 99:
		return ">99h"
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

// shortPeer abbreviates a peer ID to its last characters, as people tell
// peers apart.
func shortPeer(p peer.ID) string {
	s := p.String()
	if len(s) > 8 {
		return "…" + s[len(s)-6:]
	}
	return s
}

// peerLinks is one peer and the stripes it takes part in.
type peerLinks struct {
	peer    peer.ID
	stripes int
}

// byPeer groups links (a subscription per stripe) by peer, in order of
// first appearance; probes are left out.
func byPeer(links []node.Link) []peerLinks {
	var out []peerLinks
	index := map[peer.ID]int{}
	for _, l := range links {
		if l.Probe {
			continue
		}
		if i, ok := index[l.Peer]; ok {
			out[i].stripes++
			continue
		}
		index[l.Peer] = len(out)
		out = append(out, peerLinks{l.Peer, 1})
	}
	return out
}

// sessionDone reports whether a session has the whole verified content.
func sessionDone(p node.Progress) bool {
	return p.Err == nil && (p.Role != "fetching" || p.Done)
}

// progressLine renders one snapshot as a single status line of at most
// width runes (0: no limit): bytes, percent, rate, ETA and parents.
func progressLine(p node.Progress, elapsed time.Duration, width int) string {
	f := fractionDone(p)
	have := f * float64(p.Size)
	var b strings.Builder
	fmt.Fprintf(&b, "%5.1f%% %s / %s", 100*f, humanBytes(have), humanBytes(float64(p.Size)))
	switch {
	case f >= 1:
		fmt.Fprintf(&b, "  done in %s", humanDuration(elapsed))
	case p.Rate > 0:
		fmt.Fprintf(&b, "  %s  ETA %s", humanRate(p.Rate), humanDuration(time.Duration((float64(p.Size)-have)/p.Rate*float64(time.Second))))
	default:
		b.WriteString("  -  ETA -")
	}
	ps := byPeer(p.Upstreams)
	switch {
	case len(ps) == 0 && f < 1:
		b.WriteString("  finding peers")
	case len(ps) > 0:
		names := make([]string, 0, len(ps))
		for _, u := range ps {
			names = append(names, fmt.Sprintf("%s×%d", shortPeer(u.peer), u.stripes))
		}
		fmt.Fprintf(&b, "  from %d peer%s %s", len(ps), plural(len(ps)), strings.Join(names, ","))
	}
	if c := byPeer(p.Children); len(c) > 0 {
		fmt.Fprintf(&b, "  to %d peer%s", len(c), plural(len(c)))
	}
	return truncate(b.String(), width)
}

// truncate cuts s to at most width runes (0: no limit).
func truncate(s string, width int) string {
	if width <= 0 {
		return s
	}
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	if width == 1 {
		return "…"
	}
	return string(r[:width-1]) + "…"
}

// reporter draws download progress on stderr: a bar redrawn in place on a
// terminal, or a plain line every few seconds otherwise.
type reporter struct {
	w        io.Writer
	terminal bool
	width    func() int // terminal width, 0 if unknown
	every    time.Duration
	// connected counts the peers the node is connected to (nil: unknown);
	// asked is how many peers the command named to ask.
	connected func() int
	asked     int
}

// run reports on c from src until ctx ends, then clears a terminal line.
func (r *reporter) run(ctx context.Context, src progressSource, c cid.Cid, start time.Time) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if r.terminal {
				fmt.Fprint(r.w, "\r\x1b[K")
			}
			return
		case <-t.C:
		}
		p, ok := src.Progress(c)
		if !ok {
			line := r.waitLine(time.Since(start))
			if r.terminal {
				fmt.Fprintf(r.w, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintf(r.w, "%s %s\n", time.Now().Format("15:04:05"), line)
			}
			continue
		}
		if r.terminal {
			w := 0
			if r.width != nil {
				w = r.width() - 1
			}
			fmt.Fprintf(r.w, "\r%s\x1b[K", progressLine(p, time.Since(start), w))
			continue
		}
		fmt.Fprintf(r.w, "%s %s\n", time.Now().Format("15:04:05"), progressLine(p, time.Since(start), 0))
	}
}

// waitLine says what a download does before any peer has answered with
// the manifest.
func (r *reporter) waitLine(waited time.Duration) string {
	var b strings.Builder
	b.WriteString("looking for peers that have the content")
	if r.asked > 0 {
		fmt.Fprintf(&b, ", asking the %d named", r.asked)
	}
	if r.connected != nil {
		fmt.Fprintf(&b, "; %d connected", r.connected())
	}
	fmt.Fprintf(&b, " (%s)", humanDuration(waited))
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
