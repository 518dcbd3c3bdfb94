package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/romap2p/romap2p/internal/swarm"
)

// swarmLive draws the live table of a running swarm: redrawn in place on a
// terminal, otherwise one plain line every few seconds.
type swarmLive struct {
	w     io.Writer
	tty   bool
	drawn int           // lines drawn by the last redraw
	every time.Duration // plain mode: time between lines
	last  time.Duration // plain mode: elapsed time of the last line
}

// newSwarmLive draws on stdout when it is a terminal and no JSON goes
// there, and writes plain lines to stderr otherwise.
func newSwarmLive(env *cliEnv, asJSON bool) *swarmLive {
	if !asJSON && swarmTerminal(env.stdout) {
		return &swarmLive{w: env.stdout, tty: true}
	}
	return &swarmLive{w: env.stderr, every: 2 * time.Second, last: -time.Hour}
}

// tick shows one snapshot.
func (l *swarmLive) tick(s swarm.Snapshot) {
	if l.tty {
		l.redraw(s)
		return
	}
	done, _ := swarmDone(s)
	if !done && s.Elapsed-l.last < l.every {
		return
	}
	l.last = s.Elapsed
	fmt.Fprintln(l.w, swarmPlainLine(s))
}

// swarmDone reports whether every receiver has finished, and how many have.
func swarmDone(s swarm.Snapshot) (bool, int) {
	n := 0
	for _, p := range s.Peers {
		if p.Done {
			n++
		}
	}
	return n == len(s.Peers), n
}

// redraw replaces the previous table with the new one.
func (l *swarmLive) redraw(s swarm.Snapshot) {
	var b strings.Builder
	if l.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", l.drawn)
	}
	lines := swarmLiveLines(s)
	for _, line := range lines {
		b.WriteString("\r\x1b[2K")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	l.drawn = len(lines)
	io.WriteString(l.w, b.String())
}

// swarmLiveLines renders the live table.
func swarmLiveLines(s swarm.Snapshot) []string {
	_, n := swarmDone(s)
	lines := []string{
		fmt.Sprintf("romap2p swarm  %6.1fs  %d/%d receivers done", s.Elapsed.Seconds(), n, len(s.Peers)),
		fmt.Sprintf("%-12s %-12s %4s %14s  %s", "PEER", "PARENT", "UPS", "GOODPUT Mbit/s", "PROGRESS"),
	}
	for _, p := range s.Peers {
		rate := "-"
		if p.GoodputBps > 0 {
			rate = fmt.Sprintf("%.1f", p.GoodputBps/1e6)
		}
		lines = append(lines, fmt.Sprintf("%-12s %-12s %4d %14s  %s %s",
			swarmClip(p.Name, 12), swarmClip(swarmOrDash(p.Parent), 12), p.Upstreams, rate, swarmBar(p.Progress, 20), swarmState(p)))
	}
	return lines
}

// swarmPlainLine renders a snapshot as one line for logs.
func swarmPlainLine(s swarm.Snapshot) string {
	_, n := swarmDone(s)
	var b strings.Builder
	fmt.Fprintf(&b, "swarm %.1fs %d/%d done:", s.Elapsed.Seconds(), n, len(s.Peers))
	for _, p := range s.Peers {
		fmt.Fprintf(&b, " %s %s", p.Name, swarmState(p))
		if !p.Done && p.Joined {
			fmt.Fprintf(&b, "@%.1fMbit/s<-%s", p.GoodputBps/1e6, swarmOrDash(p.Parent))
		}
		b.WriteByte(';')
	}
	return strings.TrimSuffix(b.String(), ";")
}

// swarmState is a receiver's progress or outcome in a few characters.
func swarmState(p swarm.PeerState) string {
	switch {
	case p.Killed:
		return "killed"
	case p.Done && p.OK:
		return "done"
	case p.Done:
		return "FAILED"
	case !p.Joined:
		return "waiting"
	default:
		return fmt.Sprintf("%.1f%%", 100*p.Progress)
	}
}

// swarmBar draws a progress bar of the given width.
func swarmBar(f float64, width int) string {
	n := int(math.Round(math.Max(0, math.Min(1, f)) * float64(width)))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

func swarmClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "~"
}

func swarmOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// swarmTreeSeconds is when the last receiver would finish in the
// centralised widest-path tree: its join time plus size over its width.
func swarmTreeSeconds(r *swarm.Result) float64 {
	var t float64
	for _, p := range r.Peers {
		if p.WidthBps > 0 {
			t = math.Max(t, p.JoinS+8*float64(r.Size)/p.WidthBps)
		}
	}
	return t
}

// writeSwarmSummary prints the final table: per receiver the ideal
// widest-path width, the goodput reached and direct unicast, in Mbit/s.
func writeSwarmSummary(w io.Writer, r *swarm.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PEER\tPARENT\tIDEAL\tGOODPUT\tDIRECT\tMAXFLOW\tTIME s\tUPLOADED MiB\tOK\tUPSTREAMS\t")
	mbit := func(bps float64) string {
		if bps <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", bps/1e6)
	}
	for _, p := range r.Peers {
		t := "-"
		if p.OK {
			t = fmt.Sprintf("%.2f", p.CompletionS)
		}
		ok := "yes"
		switch {
		case p.Killed:
			ok = "killed"
		case !p.OK:
			ok = "NO"
		}
		ups := fmt.Sprintf("%d", p.UpstreamCount)
		if len(p.Upstreams) > 0 {
			ups += " (" + strings.Join(p.Upstreams, ",") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t\n", p.Name, swarmOrDash(p.Parent), mbit(p.WidthBps), mbit(p.GoodputBps),
			mbit(p.DirectBps), mbit(p.MaxFlowBps), t, float64(p.UploadedBytes)/(1<<20), ok, ups)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	_, err := fmt.Fprintf(w, "rates in Mbit/s; IDEAL = width in the widest-path tree, DIRECT = unicast from the source, MAXFLOW = all hosts relaying\n"+
		"source %s, %.1f MiB, %d stripe(s), source uploaded %.1f MiB\n"+
		"total_s %.2f (last receiver done)   widest-path tree %.2f s   bound_s %.2f (any scheme)\n",
		r.Source, float64(r.Size)/(1<<20), r.Stripes, float64(r.SourceUploadedBytes)/(1<<20),
		r.TotalS, swarmTreeSeconds(r), r.BoundS)
	if err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
