package node

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/romap2p/romap2p/internal/shaper"
	"github.com/romap2p/romap2p/treebuild"
)

// leakOptions are the goroutines that outlive every node by design: those
// of process-wide libraries, not of a node.
var leakOptions = []goleak.Option{
	// go-log's and opencensus' process-wide workers.
	goleak.IgnoreTopFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
	goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
}

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions...)
}

// TestCloseInFlight closes every node of a striped, self-organising swarm
// while its receivers subscribe, probe and switch parents: each Close
// returns within a second and no goroutine of any node is left.
func TestCloseInFlight(t *testing.T) {
	before := goleak.IgnoreCurrent()
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, 6<<20, 17)
	// Pairs at different rates, so that probes find better parents and
	// receivers switch; slow enough that nothing completes before Close.
	nw := shaper.NewNetwork()
	shape := WithShaper(func(from, to peer.ID, w io.Writer) io.Writer {
		h := fnv.New32a()
		h.Write([]byte(from + to))
		nw.SetPairRate(from.String(), to.String(), 250e3+float64(h.Sum32()%750)*1e3)
		return nw.Writer(from.String(), to.String(), w)
	})
	// Quick probing, so that probes and switches happen within the test.
	quick := WithChooser(treebuild.WithProbeWindow(300*time.Millisecond), treebuild.WithProbeInterval(400*time.Millisecond),
		treebuild.WithMinDwell(200*time.Millisecond), treebuild.WithHysteresis(0.01))
	mk := func() *Node {
		n, err := New(context.Background(), WithHostOptions(ListenAddrs("/ip4/127.0.0.1/tcp/0")), WithoutRouting(),
			WithStripes(4), WithMaxChildren(2), shape, quick)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	src := mk()
	// Small symbols: an encoder that is building a block when Close comes
	// finishes that first, and under the race detector a block of 4 KiB
	// symbols takes about a second to build.
	c, err := src.Add(context.Background(), path, SymbolSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	recv := make([]*Node, 6)
	type result struct {
		out string
		err error
	}
	errc := make(chan result, len(recv))
	for i := range recv {
		recv[i] = mk()
		go func() {
			out := filepath.Join(dir, fmt.Sprint("out", i))
			errc <- result{out, recv[i].Get(context.Background(), c, out, WithPeers(info(src)))}
		}()
	}
	// Let them attach, probe and switch for a while.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		probing, switched := 0, 0
		for _, n := range recv {
			if p, ok := n.Progress(c); ok {
				for _, u := range p.Upstreams {
					if u.Probe {
						probing++
					}
				}
				switched += int(p.Reparents)
			}
		}
		if probing > 0 && switched > 0 {
			t.Logf("closing with %d probes running, %d parent switches made", probing, switched)
			break
		}
	}
	for _, n := range recv {
		if p, ok := n.Progress(c); ok && p.Done {
			t.Fatalf("a receiver completed before Close: the test closes nothing in flight")
		}
	}
	for i, n := range append([]*Node{src}, recv...) {
		start := time.Now()
		tm := time.AfterFunc(closeBound, func() {
			buf := make([]byte, 1<<22)
			buf = buf[:runtime.Stack(buf, true)]
			t.Logf("node %d: Close still running after %v:\n%s", i, closeBound, buf)
		})
		err := n.Close()
		tm.Stop()
		if err != nil {
			t.Errorf("node %d: close: %v", i, err)
		}
		took := time.Since(start)
		t.Logf("node %d: Close took %v", i, took.Round(time.Millisecond))
		if took > closeBound {
			t.Errorf("node %d: Close took %v, more than %v", i, took, closeBound)
		}
	}
	// Every Get returns: with ErrClosed, or (a receiver that completed
	// while the others closed) with the whole file.
	for range recv {
		r := <-errc
		switch {
		case errors.Is(r.err, ErrClosed):
		case r.err == nil:
			if got := fileHash(t, r.out); got != want {
				t.Errorf("%s: completed during Close with a wrong file", r.out)
			}
			t.Logf("%s completed while the swarm closed", r.out)
		default:
			t.Errorf("%s: Get of a closed node: %v, want ErrClosed", r.out, r.err)
		}
	}
	goleak.VerifyNone(t, append([]goleak.Option{before}, leakOptions...)...)
}
