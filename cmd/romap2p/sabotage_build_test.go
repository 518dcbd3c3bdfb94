package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// saboteurTag is the build tag of the saboteur build (sabotage.go).
const saboteurTag = "romap2p_saboteur"

// goList runs `go list` on this package with extra arguments.
func goList(t *testing.T, args ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	out, err := exec.Command(goBin, append(append([]string{"list"}, args...), ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestSaboteurOnlyInTaggedBuild shows that the ordinary binary cannot be a
// saboteur: it does not link internal/hostile, and none of its files reads
// ROMAP2P_SABOTAGE; the tagged build does both.
func TestSaboteurOnlyInTaggedBuild(t *testing.T) {
	const hostilePkg = "github.com/romap2p/romap2p/internal/hostile"
	deps := strings.Fields(goList(t, "-f", `{{join .Deps " "}}`))
	if slices.Contains(deps, hostilePkg) {
		t.Errorf("the ordinary build links %s", hostilePkg)
	}
	tagged := strings.Fields(goList(t, "-tags", saboteurTag, "-f", `{{join .Deps " "}}`))
	if !slices.Contains(tagged, hostilePkg) {
		t.Errorf("the %s build does not link %s", saboteurTag, hostilePkg)
	}
	for _, f := range strings.Fields(goList(t, "-f", `{{join .GoFiles " "}}`)) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("ROMAP2P_SABOTAGE")) || bytes.Contains(b, []byte("internal/hostile")) {
			t.Errorf("%s, in the ordinary build, names the saboteur", f)
		}
	}
	files := strings.Fields(goList(t, "-tags", saboteurTag, "-f", `{{join .GoFiles " "}}`))
	if !slices.Contains(files, "sabotage.go") || slices.Contains(files, "gethook.go") {
		t.Errorf("the %s build compiles %v", saboteurTag, files)
	}
}

// regexpJSONOK matches get's JSON line of a verified download.
var regexpJSONOK = regexp.MustCompile(`"ok":true`)

// freeLoopback returns a loopback TCP multiaddr on a port free just now.
func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
}

// waitListening waits until a TCP multiaddr from freeLoopback accepts.
func waitListening(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	hostPort := strings.TrimPrefix(strings.Replace(addr, "/tcp/", ":", 1), "/ip4/")
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", hostPort, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peerID returns the peer ID of a repo (made if missing).
func peerID(t *testing.T, bin, repo string) string {
	t.Helper()
	out, err := exec.Command(bin, "id", "--json", "--repo", repo).Output()
	if err != nil {
		t.Fatalf("id: %v", err)
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.ID == "" {
		t.Fatalf("id: %q", out)
	}
	return v.ID
}

// TestSaboteurBuild vets and builds the saboteur build, then runs a source,
// a relay and a receiver that knows only the relay, twice: with the tagged
// binary as the relay (ROMAP2P_SABOTAGE=all), the receiver blames it within
// 2 s of the first corrupt source symbol its record lists, and still gets a
// correct copy; with the ordinary binary as the relay and the same
// environment, nothing is corrupted and no one is blamed.
func TestSaboteurBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	if out, err := exec.Command(goBin, "vet", "-tags", saboteurTag, ".").CombinedOutput(); err != nil {
		t.Fatalf("go vet -tags %s: %v\n%s", saboteurTag, err, out)
	}
	sabBin := filepath.Join(t.TempDir(), "romap2p-saboteur")
	if out, err := exec.Command(goBin, "build", "-tags", saboteurTag, "-o", sabBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", saboteurTag, err, out)
	}
	bin := buildBinary(t)

	dir := t.TempDir()
	data := writeRandom(t, filepath.Join(dir, "in.bin"), 2<<20, 7)
	loop := "/ip4/127.0.0.1/tcp/0"
	// The source's upload is capped so that the relay takes a few seconds.
	srv := start(t, bin, "serve", "--no-dht", "--listen", loop, "--repo", filepath.Join(dir, "serve-repo"), "--api", "off",
		"--upload-limit", "1MiB/s", filepath.Join(dir, "in.bin"))
	m := srv.expectLine(t, getHintRE, 30*time.Second)
	c, boot := m[1], m[2]

	for _, tc := range []struct {
		name     string
		bin      string
		saboteur bool
	}{{"tagged", sabBin, true}, {"ordinary", bin, false}} {
		t.Run(tc.name, func(t *testing.T) {
			record := filepath.Join(dir, tc.name+".record")
			relayRepo := filepath.Join(dir, tc.name+"-relay-repo")
			relayID := peerID(t, tc.bin, relayRepo)
			relayAddr := freeLoopback(t)
			env := []string{"ROMAP2P_SABOTAGE=all", "ROMAP2P_SABOTAGE_RECORD=" + record}
			relay := startIn(t, "", env, tc.bin, "get", c, "--bootstrap", boot, "--no-dht", "--no-mdns", "--json", "--keep-serving", "--api", "off",
				"--listen", relayAddr, "--repo", relayRepo, "-o", filepath.Join(dir, tc.name+"-relay.out"))
			// The receiver joins while the relay still fetches, so that the
			// relay forwards source symbols (a complete relay would send
			// repair symbols of its own only).
			waitListening(t, relayAddr, 30*time.Second)
			g := start(t, bin, "get", c, "--bootstrap", relayAddr+"/p2p/"+relayID, "--no-dht", "--no-mdns", "--json", "--no-seed",
				"--listen", loop, "--repo", filepath.Join(dir, tc.name+"-get-repo"), "-o", filepath.Join(dir, tc.name+".out"))
			if code := g.wait(t, 90*time.Second); code != 0 {
				t.Fatalf("get exit %d: %s", code, g.stderr)
			}
			if got, err := os.ReadFile(filepath.Join(dir, tc.name+".out")); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("the receiver's copy differs from the input (%v)", err)
			}
			var res getResult
			if err := json.Unmarshal([]byte(g.stdout.String()), &res); err != nil {
				t.Fatalf("get --json: %v\n%s", err, g.stdout)
			}
			relay.expectLine(t, regexpJSONOK, 60*time.Second)
			if err := relay.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			relay.wait(t, 20*time.Second)
			if !tc.saboteur {
				if len(res.Blamed) != 0 || res.BadSymbols != 0 {
					t.Errorf("the ordinary relay was blamed (%v), %d bad symbols", res.Blamed, res.BadSymbols)
				}
				if strings.Contains(relay.stderr.String(), "saboteur") {
					t.Errorf("the ordinary relay speaks of a saboteur: %s", relay.stderr)
				}
				if _, err := os.Stat(record); err == nil {
					t.Error("the ordinary relay wrote a saboteur record")
				}
				return
			}
			b, err := os.ReadFile(record)
			if err != nil {
				t.Fatalf("no saboteur record: %v\nrelay stderr: %s", err, relay.stderr)
			}
			var rec struct {
				Mode      string               `json:"mode"`
				Peer      string               `json:"peer"`
				Corrupted int                  `json:"corrupted"`
				Victims   map[string]time.Time `json:"victims"`
			}
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatalf("record %q: %v", b, err)
			}
			if rec.Mode != "all" || rec.Peer != relayID || rec.Corrupted == 0 {
				t.Errorf("record %s", b)
			}
			getID := peerID(t, bin, filepath.Join(dir, tc.name+"-get-repo"))
			first, ok := rec.Victims[getID]
			if !ok {
				t.Fatalf("the receiver %s is not among the victims: %s", getID, b)
			}
			if len(res.Blamed) != 1 || res.Blamed[0].Peer != relayID {
				t.Fatalf("blamed %v, want the relay %s alone", res.Blamed, relayID)
			}
			at, err := time.Parse(time.RFC3339Nano, res.Blamed[0].At)
			if err != nil {
				t.Fatal(err)
			}
			stop := at.Sub(first)
			if stop < 0 || stop > 2*time.Second {
				t.Errorf("blamed %v after the first corrupt source symbol", stop)
			}
			t.Logf("%d corrupt symbols; blamed %v after the first corrupt source symbol", rec.Corrupted, stop.Round(time.Millisecond))
			if _, err := time.Parse(time.RFC3339Nano, res.Completed); err != nil {
				t.Errorf("completed %q: %v", res.Completed, err)
			}
		})
	}
	if err := srv.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	srv.wait(t, 20*time.Second)
}
