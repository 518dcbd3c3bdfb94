package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestGetsExit runs 50 `get` processes, five at a time against one striped
// `serve` and each other (a get relays to the others of its wave while it
// downloads): every one prints its result and exits within 2 s of that,
// with a verified file. A get that printed and then waited for a
// goroutine or stream nobody closed would hang here.
func TestGetsExit(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	data := writeRandom(t, filepath.Join(dir, "in.bin"), 3<<20, 3)
	loop := "/ip4/127.0.0.1/tcp/0"
	srv := start(t, bin, "serve", "--stripes", "4", "--no-dht", "--listen", loop, "--api", "off",
		"--repo", filepath.Join(dir, "serve-repo"), filepath.Join(dir, "in.bin"))
	m := srv.expectLine(t, getHintRE, 30*time.Second)
	c, boot := m[1], m[2]
	result := regexp.MustCompile(`^\{.*"ok":true`)

	const total, wave = 50, 5
	var worst time.Duration
	for w := 0; w < total/wave; w++ {
		var runs []*getRun
		for i := range wave {
			name := fmt.Sprintf("g%02d", w*wave+i)
			out := filepath.Join(dir, "out", name)
			p := start(t, bin, "get", c, "--no-seed", "--stripes", "4", "--bootstrap", boot, "--no-dht", "--json",
				"--listen", loop, "--api", "off", "--repo", filepath.Join(dir, "repo-"+name), "-o", out)
			runs = append(runs, &getRun{p: p, out: out})
		}
		// Each get is watched on its own, so that the time from its
		// result line to its exit is measured from the moment it printed.
		errs := make(chan error, len(runs))
		for i, r := range runs {
			go func() {
				errs <- r.watch(result, w*wave+i, data)
			}()
		}
		for range runs {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range runs {
			worst = max(worst, r.after)
		}
	}
	t.Logf("%d gets: the slowest exited %v after printing its result", total, worst.Round(time.Millisecond))
}

// getRun is one get process of TestGetsExit.
type getRun struct {
	p     *proc
	out   string
	after time.Duration // from its result line to its exit
}

// watch waits for the result line, then for the exit within 2 s of it, and
// checks the output.
func (r *getRun) watch(result *regexp.Regexp, i int, data []byte) error {
	deadline := time.After(60 * time.Second)
	for printed := false; !printed; {
		select {
		case l, ok := <-r.p.lines:
			if !ok {
				return fmt.Errorf("get %d ended without a result line\nstderr: %s", i, r.p.stderr)
			}
			printed = result.MatchString(l)
		case <-deadline:
			return fmt.Errorf("get %d: no result after 60 s\nstderr: %s", i, r.p.stderr)
		}
	}
	at := time.Now()
	select {
	case <-r.p.done:
	case <-time.After(2 * time.Second):
		return fmt.Errorf("get %d printed its result and was still running 2 s later\nstderr: %s", i, r.p.stderr)
	}
	r.after = time.Since(at)
	if code := r.p.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("get %d exit %d: %s", i, code, r.p.stderr)
	}
	if got, err := os.ReadFile(r.out); err != nil || !bytes.Equal(got, data) {
		return fmt.Errorf("get %d: output differs from the input (%v)", i, err)
	}
	return nil
}
