package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles the command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	bin := filepath.Join(t.TempDir(), "romap2p")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a running romap2p process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	lines          chan string // stdout, line by line
	done           chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	return startIn(t, "", nil, bin, args...)
}

// startIn starts bin in dir (empty: the current one) with extra
// environment variables.
func startIn(t *testing.T, dir string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{
		cmd:    exec.Command(bin, args...),
		stdout: new(lockedBuffer), stderr: new(lockedBuffer),
		lines: make(chan string, 100), done: make(chan struct{}),
	}
	p.cmd.Dir = dir
	p.cmd.Env = append(append(os.Environ(), "ROMAP2P_API=", "GOLOG_LOG_LEVEL=error"), env...)
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(io.TeeReader(out, p.stdout))
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code, failing the test after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v still running after %v\nstdout: %s\nstderr: %s", p.cmd.Args, timeout, p.stdout, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// expectLine waits for a stdout line matching re and returns its submatches.
func (p *proc) expectLine(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%v ended without a line like %s\nstderr: %s", p.cmd.Args, re, p.stderr)
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line like %s after %v\nstdout: %s\nstderr: %s", re, timeout, p.stdout, p.stderr)
		}
	}
}

var getHintRE = regexp.MustCompile(`romap2p get (\S+) --bootstrap (\S+)`)

func writeRandom(t *testing.T, path string, n int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	data := writeRandom(t, filepath.Join(dir, "in.bin"), 8<<20, 1)
	repo := filepath.Join(dir, "serve-repo")
	loop := "/ip4/127.0.0.1/tcp/0"

	srv := start(t, bin, "serve", "--no-dht", "--listen", loop, "--repo", repo,
		"--api", "127.0.0.1:0", "--metrics", "127.0.0.1:0", filepath.Join(dir, "in.bin"))
	m := srv.expectLine(t, getHintRE, 30*time.Second)
	c, boot := m[1], m[2]
	if !strings.Contains(boot, "/ip4/127.0.0.1/tcp/") || !strings.Contains(boot, "/p2p/") {
		t.Fatalf("bootstrap address %q", boot)
	}
	serverID := boot[strings.LastIndex(boot, "/")+1:]

	t.Run("two gets", func(t *testing.T) {
		var gets []*proc
		for i := range 2 {
			// Logs (here at info level) go to stderr, never into the JSON.
			gets = append(gets, start(t, bin, "get", c, "--bootstrap", boot, "--no-dht", "--json", "--log-level", "info", "--listen", loop,
				"--repo", filepath.Join(dir, "get-repo", string(rune('a'+i))), "-o", filepath.Join(dir, "out", string(rune('a'+i)))))
		}
		for i, g := range gets {
			if code := g.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("get %d exit %d: %s", i, code, g.stderr)
			}
			out := filepath.Join(dir, "out", string(rune('a'+i)))
			got, err := os.ReadFile(out)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("get %d: output differs from the input (%v)", i, err)
			}
			var res getResult
			if err := json.Unmarshal([]byte(g.stdout.String()), &res); err != nil {
				t.Fatalf("get %d: stdout is not one JSON object: %v\n%s", i, err, g.stdout)
			}
			if !strings.Contains(g.stderr.String(), "roma/node") {
				t.Errorf("get %d: --log-level info logged nothing on stderr", i)
			}
			if !res.OK || res.CID != c || res.Path != out || res.Size != int64(len(data)) || res.Name != "in.bin" {
				t.Errorf("get %d: result %+v", i, res)
			}
			if res.Seconds <= 0 || res.GoodputBps <= 0 || res.SymbolsNeeded == 0 || res.SymbolsIn < res.SymbolsNeeded {
				t.Errorf("get %d: figures %+v", i, res)
			}
			if len(res.Upstreams) == 0 || len(res.Parents) == 0 {
				t.Errorf("get %d: no upstreams recorded: %+v", i, res)
			}
			var fresh uint64
			for _, u := range res.Upstreams {
				fresh += u.Fresh
			}
			if fresh > res.SymbolsNew {
				t.Errorf("get %d: upstreams claim %d fresh symbols of %d new", i, fresh, res.SymbolsNew)
			}
			if _, err := os.Stat(out + ".part"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("get %d: .part left behind", i)
			}
		}
	})

	t.Run("status and metrics", func(t *testing.T) {
		st := start(t, bin, "status", "--repo", repo, "--json")
		if code := st.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("status exit %d: %s", code, st.stderr)
		}
		var s statusJSON
		if err := json.Unmarshal([]byte(st.stdout.String()), &s); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, st.stdout)
		}
		if s.PeerID != serverID || len(s.Sessions) != 1 || s.Sessions[0].CID != c || s.Sessions[0].Role != "source" {
			t.Fatalf("status %+v", s)
		}
		if up := s.Sessions[0].UploadedBytes; up < uint64(len(data)) {
			t.Errorf("source uploaded %d bytes for two receivers of %d", up, len(data))
		}
		tbl := start(t, bin, "status", "--repo", repo)
		if code := tbl.wait(t, 20*time.Second); code != 0 || !strings.Contains(tbl.stdout.String(), c) {
			t.Errorf("status table exit %d:\n%s%s", code, tbl.stdout, tbl.stderr)
		}
		mm := regexp.MustCompile(`metrics on (http://\S+)`).FindStringSubmatch(srv.stderr.String())
		if mm == nil {
			t.Fatalf("no metrics address in %q", srv.stderr)
		}
		resp, err := http.Get(mm[1])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `romap2p_session_uploaded_bytes_total{cid="`+c+`",name="in.bin"}`) {
			t.Errorf("metrics lack the session:\n%.2000s", body)
		}
		for _, family := range []string{"libp2p_rcmgr_", "libp2p_swarm_", "libp2p_identify_"} {
			if !strings.Contains(string(body), family) {
				t.Errorf("metrics lack libp2p's own %s... series", family)
			}
		}
	})

	t.Run("bad CID", func(t *testing.T) {
		g := start(t, bin, "get", "definitely-not-a-cid", "--no-dht", "--repo", filepath.Join(dir, "bad-repo"))
		code := g.wait(t, 20*time.Second)
		if code != exitUsage && code != exitFailure {
			t.Errorf("exit %d", code)
		}
		if e := strings.TrimSpace(g.stderr.String()); e == "" || strings.Contains(e, "\n") {
			t.Errorf("want a one-line reason, got %q", e)
		}
	})

	t.Run("interrupt and resume", func(t *testing.T) {
		// A second server whose upload is capped makes the download slow
		// enough to interrupt at a known point.
		slow := start(t, bin, "serve", "--no-dht", "--listen", loop, "--repo", filepath.Join(dir, "slow-repo"),
			"--api", "off", "--upload-limit", "2MiB/s", filepath.Join(dir, "in.bin"))
		m := slow.expectLine(t, getHintRE, 30*time.Second)
		out := filepath.Join(dir, "resumed.bin")
		args := []string{"get", m[1], "--bootstrap", m[2], "--no-dht", "--listen", loop, "--repo", filepath.Join(dir, "int-repo"), "-o", out}
		g := start(t, bin, args...)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(out + ".part"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no partial output after 20 s: %s", g.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second) // about a quarter of the file
		if err := g.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := g.wait(t, 20*time.Second); code != exitInterrupted {
			t.Fatalf("interrupted get exit %d: %s", code, g.stderr)
		}
		if !strings.Contains(g.stderr.String(), "interrupted; run the same command again to resume") {
			t.Errorf("stderr %q", g.stderr)
		}
		if _, err := os.Stat(out + ".part"); err != nil {
			t.Fatalf("no partial download left: %v", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("output exists after an interrupted download: %v", err)
		}
		again := start(t, bin, append(args, "--json")...)
		if code := again.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("resumed get exit %d: %s", code, again.stderr)
		}
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("resumed output differs from the input (%v)", err)
		}
		var res getResult
		if err := json.Unmarshal([]byte(again.stdout.String()), &res); err != nil {
			t.Fatal(err)
		}
		// The first run kept its symbols: the second needs fewer than K.
		if res.SymbolsIn >= res.SymbolsNeeded {
			t.Errorf("resume fetched %d symbols of %d needed: nothing was kept", res.SymbolsIn, res.SymbolsNeeded)
		}
		if err := slow.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := slow.wait(t, 20*time.Second); code != 0 {
			t.Errorf("slow serve exit %d: %s", code, slow.stderr)
		}
	})

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t, 20*time.Second); code != 0 {
		t.Errorf("serve exit %d after SIGTERM: %s", code, srv.stderr)
	}
	if _, err := os.Stat(filepath.Join(repo, apiFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("api address file left behind: %v", err)
	}
}
