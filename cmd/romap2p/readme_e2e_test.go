package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeTwoTerminals follows the README's quick start literally, as one
// user with the default repo: `romap2p serve big.iso` in one terminal, the
// printed get command pasted into another. Then the same serving node is
// asked to overwrite its file, to stream to stdout, and to start twice.
func TestReadmeTwoTerminals(t *testing.T) {
	bin := buildBinary(t)
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "ROMAP2P_REPO="}
	serveDir, getDir := t.TempDir(), t.TempDir()
	want := writeRandom(t, filepath.Join(serveDir, "big.iso"), 3<<20+12345, 7)

	// Terminal 1.
	srv := startIn(t, serveDir, env, bin, "serve", "big.iso")
	m := srv.expectLine(t, regexp.MustCompile(`^\s+get it with:\s+(.+)$`), 30*time.Second)
	pasted := strings.Fields(m[1])
	if len(pasted) < 5 || pasted[1] != "get" || pasted[3] != "--bootstrap" {
		t.Fatalf("printed command %q", m[1])
	}
	if pasted[0] != bin {
		t.Errorf("printed command runs %q, want this binary %q (it is not on the PATH)", pasted[0], bin)
	}
	cidStr := pasted[2]

	// Terminal 2: the printed command, as is.
	start := time.Now()
	g := startIn(t, getDir, env, pasted[0], pasted[1:]...)
	if code := g.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("pasted get: exit %d\nstdout: %s\nstderr: %s", code, g.stdout, g.stderr)
	}
	t.Logf("pasted get took %v", time.Since(start))
	if !strings.Contains(g.stderr.String(), "fresh identity") {
		t.Errorf("get on the busy default repo did not say it uses a fresh identity: %s", g.stderr)
	}
	got, err := os.ReadFile(filepath.Join(getDir, "big.iso"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("downloaded file differs (%v)", err)
	}

	// The served file is never written over, with or without --force.
	for _, extra := range [][]string{nil, {"--force"}} {
		args := append([]string{"get", cidStr, "--bootstrap", pasted[4], "-o", "big.iso"}, extra...)
		o := startIn(t, serveDir, env, bin, args...)
		code := o.wait(t, 30*time.Second)
		if code != exitUsage || strings.Count(o.stderr.String(), "\n") != 1 || !strings.Contains(o.stderr.String(), "serves") {
			t.Errorf("%v: exit %d, stderr %q", extra, code, o.stderr)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(serveDir, "big.iso")); !bytes.Equal(b, want) {
		t.Fatal("the served file changed")
	}
	// Any other existing file needs --force.
	other := filepath.Join(getDir, "other")
	if err := os.WriteFile(other, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := startIn(t, getDir, env, bin, "get", cidStr, "--bootstrap", pasted[4], "-o", other)
	if code := o.wait(t, 30*time.Second); code != exitUsage || !strings.Contains(o.stderr.String(), "--force") {
		t.Errorf("existing file: exit %d, stderr %q", code, o.stderr)
	}

	// -o - streams the verified file to stdout.
	s := startIn(t, t.TempDir(), env, bin, "get", cidStr, "--bootstrap", pasted[4], "-o", "-", "-q")
	if code := s.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("-o -: exit %d: %s", code, s.stderr)
	}
	if !bytes.Equal([]byte(s.stdout.String()), want) {
		t.Errorf("-o - wrote %d bytes, want the %d of the file", len(s.stdout.String()), len(want))
	}

	// A second serve on the same repo refuses at once, saying what to do.
	t0 := time.Now()
	s2 := startIn(t, serveDir, env, bin, "serve", "big.iso")
	if code := s2.wait(t, 10*time.Second); code != exitFailure || !strings.Contains(s2.stderr.String(), "--repo") {
		t.Errorf("second serve: exit %d, stderr %q", code, s2.stderr)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("second serve took %v to refuse", d)
	}
	_ = srv.cmd.Process.Signal(os.Interrupt)
	srv.wait(t, 20*time.Second)
}

// TestBootstrapOwnID: naming this node itself as the peer to join is a
// usage error at once, not a minute of waiting.
func TestBootstrapOwnID(t *testing.T) {
	repo := t.TempDir()
	var out, errb bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run([]string{"id", "--repo", repo, "--json"}, env); code != exitOK {
		t.Fatalf("id: %d %s", code, errb.String())
	}
	var id struct{ ID string }
	if err := json.Unmarshal(out.Bytes(), &id); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	t0 := time.Now()
	code := run([]string{"get", testCID(t).String(), "--repo", repo, "--no-mdns", "--no-dht", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/" + id.ID}, env)
	if code != exitUsage || !strings.Contains(errb.String(), "own peer ID") || time.Since(t0) > 5*time.Second {
		t.Errorf("exit %d after %v: %q", code, time.Since(t0), errb.String())
	}
}

// TestUsageErrors: every mistake on the command line is one line on
// stderr with a pointer to the help, and exit code 2.
func TestUsageErrors(t *testing.T) {
	c := testCID(t).String()
	repo := t.TempDir()
	for _, args := range [][]string{
		{},
		{"nope"},
		{"get"},
		{"get", "not-a-cid"},
		{"get", c, c},
		{"get", c, "--nope"},
		{"get", c, "-x"},
		{"get", c, "--stripes", "65"},
		{"get", c, "--stripes", "256"},
		{"get", c, "--stripes", "0"},
		{"get", c, "--stripes", "many"},
		{"get", c, "--max-children", "0"},
		{"get", c, "--security", "plaintext"},
		{"get", c, "--bootstrap", "/ip4/127.0.0.1/tcp/1"},
		{"get", c, "--listen", "/ip4/127.0.0.1/udp/1"},
		{"get", c, "--upload-limit", "fast"},
		{"get", c, "--timeout", "soon"},
		{"get", c, "--timeout", "-1s"},
		{"get", c, "-o", "-", "--json"},
		{"get", c, "--parents", "nowhere"},
		{"get", c, "--log-level", "loud"},
		{"serve"},
		{"serve", "x", "--symbol-size", "8"},
		{"serve", "x", "--stripes", "100"},
		{"id", "extra"},
		{"id", "--stripes", "4"},
		{"status", "extra"},
		{"swarm", "extra"},
		{"swarm", "--stripes", "65"},
		{"swarm", "--tree", "bushy"},
		{"bench", "disk"},
	} {
		var out, errb bytes.Buffer
		env := &cliEnv{stdout: &out, stderr: &errb, getenv: func(k string) string {
			if k == "ROMAP2P_REPO" {
				return repo
			}
			return ""
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(args, env)
		cancel()
		_ = ctx
		e := errb.String()
		if code != exitUsage || strings.Count(e, "\n") != 1 || !strings.HasSuffix(e, "--help')\n") {
			t.Errorf("%q: exit %d, stderr %q", args, code, e)
		}
		if out.Len() != 0 {
			t.Errorf("%q: wrote %q on stdout", args, out.String())
		}
	}
}

// TestIDHelpOwnFlags: a command's help lists only the flags it has.
func TestIDHelpOwnFlags(t *testing.T) {
	var out, errb bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run([]string{"id", "--help"}, env); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	h := out.String()
	for _, f := range []string{"--stripes", "--bootstrap", "--listen", "--upload-limit"} {
		if strings.Contains(h, f) {
			t.Errorf("id --help lists %s:\n%s", f, h)
		}
	}
	if !strings.Contains(h, "--repo") || !strings.Contains(h, "--json") {
		t.Errorf("id --help lacks its flags:\n%s", h)
	}
	out.Reset()
	if code := run([]string{"get", "--help"}, env); code != exitOK || !strings.Contains(out.String(), "-o, --output") || !strings.Contains(out.String(), "-f, --force") {
		t.Errorf("get --help: %d\n%s", code, out.String())
	}
}
