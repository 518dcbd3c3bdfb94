package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/hostile"
)

// rssBytes returns a process's resident set size.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// peakRSS samples a process's RSS every 20 ms until stop is closed and
// returns the peak.
func peakRSS(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r, err := rssBytes(pid); err == nil {
				peak = max(peak, r)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// runGet runs one get to the end and returns how long it took.
func runGet(t *testing.T, bin, c, boot, dir, name string, data []byte, extra ...string) time.Duration {
	t.Helper()
	out := filepath.Join(dir, "out", name)
	args := append([]string{"get", c, "--no-seed", "--bootstrap", boot, "--no-dht", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off",
		"--repo", filepath.Join(dir, "repo-"+name), "-o", out}, extra...)
	start := time.Now()
	p := startProc(t, bin, args...)
	if code := p.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("get %s exit %d: %s", name, code, p.stderr)
	}
	took := time.Since(start)
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get %s: output differs from the input (%v)", name, err)
	}
	return took
}

// startProc is start, named apart so that this file reads on its own.
func startProc(t *testing.T, bin string, args ...string) *proc { return start(t, bin, args...) }

// TestServeUnderFlood runs a striped serve process and an honest get
// process alone, then while 8 and then 200 identities (from another
// loopback address) subscribe to the serve's stripes and read nothing:
// the honest get must complete within twice its time alone, and the serve
// must stay within 150 MiB of memory during the 200.
func TestServeUnderFlood(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	data := writeRandom(t, filepath.Join(dir, "in.bin"), 32<<20, 7)
	srv := start(t, bin, "serve", "--stripes", "8", "--no-dht", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off",
		"--repo", filepath.Join(dir, "serve-repo"), filepath.Join(dir, "in.bin"))
	m := srv.expectLine(t, getHintRE, 30*time.Second)
	c, boot := m[1], m[2]
	cc, err := cid.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	target, err := peer.AddrInfoFromString(boot)
	if err != nil {
		t.Fatal(err)
	}
	alone := runGet(t, bin, c, boot, dir, "alone0", data, "--stripes", "8")
	alone = min(alone, runGet(t, bin, c, boot, dir, "alone1", data, "--stripes", "8"))
	for _, n := range []int{8, 200} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		stop := make(chan struct{})
		peak := peakRSS(srv.cmd.Process.Pid, stop)
		f, err := hostile.NewFlood(ctx, n, *target, cc, hostile.Options{Behaviour: hostile.ReadNothing, ListenIP: "127.0.0.2"})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		during := runGet(t, bin, c, boot, dir, fmt.Sprint("flood", n), data, "--stripes", "8")
		st := f.Stats()
		_ = f.Close()
		cancel()
		close(stop)
		rss := <-peak
		t.Logf("%d non-reading identities: honest get alone %v, during %v (%.2fx); serve peak RSS %.1f MiB; flood %+v",
			n, alone.Round(time.Millisecond), during.Round(time.Millisecond), float64(during)/float64(alone), float64(rss)/(1<<20), st)
		if during > 2*alone+300*time.Millisecond {
			t.Errorf("%d identities: honest get %v, alone %v", n, during, alone)
		}
		if rss > 150<<20 {
			t.Errorf("%d identities: serve peak RSS %.1f MiB", n, float64(rss)/(1<<20))
		}
	}
}

// TestRateLimitedServe runs 10 gets one after another from a serve capped
// at 8 MB/s: none may take more than 1.5 times the fastest (a lone
// receiver is never too slow for a rate-limited parent).
func TestRateLimitedServe(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	data := writeRandom(t, filepath.Join(dir, "in.bin"), 12<<20, 8)
	srv := start(t, bin, "serve", "--stripes", "8", "--upload-limit", "8MB/s", "--no-dht", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off",
		"--repo", filepath.Join(dir, "serve-repo"), filepath.Join(dir, "in.bin"))
	m := srv.expectLine(t, getHintRE, 30*time.Second)
	c, boot := m[1], m[2]
	var took []time.Duration
	fastest, slowest := time.Duration(1<<62), time.Duration(0)
	for i := range 10 {
		d := runGet(t, bin, c, boot, dir, fmt.Sprint("g", i), data, "--stripes", "8").Round(time.Millisecond)
		took = append(took, d)
		fastest, slowest = min(fastest, d), max(slowest, d)
	}
	t.Logf("10 sequential gets of 12 MiB at 8 MB/s: %v; slowest/fastest %.2f", took, float64(slowest)/float64(fastest))
	if float64(slowest) > 1.5*float64(fastest) {
		t.Errorf("slowest %v, fastest %v", slowest, fastest)
	}
}

// TestKillLoop kills a get with SIGKILL at a random moment 20 times, each
// time starting it again on the same repository; then lets it finish.
// Under the final name there is never anything but the whole, correct
// file.
func TestKillLoop(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	data := writeRandom(t, filepath.Join(dir, "in.bin"), 24<<20, 9)
	srv := start(t, bin, "serve", "--stripes", "4", "--upload-limit", "16MB/s", "--no-dht", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off",
		"--repo", filepath.Join(dir, "serve-repo"), filepath.Join(dir, "in.bin"))
	m := srv.expectLine(t, getHintRE, 30*time.Second)
	c, boot := m[1], m[2]
	out := filepath.Join(dir, "out", "file")
	repo := filepath.Join(dir, "get-repo")
	args := []string{"get", c, "--no-seed", "--stripes", "4", "--bootstrap", boot, "--no-dht", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off", "--repo", repo, "-o", out}
	rng := rand.New(rand.NewPCG(21, 21))
	check := func(when string) bool {
		got, err := os.ReadFile(out)
		if errors.Is(err, os.ErrNotExist) {
			return false
		}
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes under the final name, not the file", when, len(got))
		}
		return true
	}
	completed, killed := 0, 0
	for i := range 20 {
		p := start(t, bin, args...)
		delay := time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
		select {
		case <-p.done:
		case <-time.After(delay):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			killed++
		}
		if check(fmt.Sprintf("kill %d after %v", i, delay.Round(time.Millisecond))) {
			completed++
			if err := os.Remove(out); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := start(t, bin, args...)
	if code := p.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("final get exit %d: %s", code, p.stderr)
	}
	if !check("final get") {
		t.Fatal("final get left no file")
	}
	t.Logf("20 runs: %d killed, %d completed before the kill; final file correct", killed, completed)
}

// TestDiskFull fetches into a 9 MiB file system a file of 12 MiB: the get
// fails with an error that says the disk is full, and nothing is left
// under the final name. The file system is a tmpfs this test mounts and
// unmounts (root only; skipped otherwise).
func TestDiskFull(t *testing.T) {
	bin := buildBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root")
	}
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=9m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(small, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", small, err)
		}
	})
	data := writeRandom(t, filepath.Join(dir, "in.bin"), 12<<20, 10)
	srv := start(t, bin, "serve", "--stripes", "4", "--no-dht", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off",
		"--repo", filepath.Join(dir, "serve-repo"), filepath.Join(dir, "in.bin"))
	m := srv.expectLine(t, getHintRE, 30*time.Second)
	c, boot := m[1], m[2]
	out := filepath.Join(small, "file")
	p := start(t, bin, "get", c, "--no-seed", "--stripes", "4", "--bootstrap", boot, "--no-dht", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off",
		"--repo", filepath.Join(dir, "get-repo"), "-o", out)
	code := p.wait(t, 2*time.Minute)
	t.Logf("get into a 9 MiB file system: exit %d, stderr: %s", code, strings.TrimSpace(p.stderr.String()))
	if code == 0 {
		t.Fatal("get succeeded on a full disk")
	}
	if !strings.Contains(strings.ToLower(p.stderr.String()), "no space") {
		t.Errorf("the error does not say the disk is full")
	}
	if b, err := os.ReadFile(out); err == nil && !bytes.Equal(b, data) {
		t.Fatalf("%d bytes under the final name, not the file", len(b))
	}
}
