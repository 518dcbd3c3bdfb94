package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/romap2p/romap2p/fountain"
)

func TestBenchTiers(t *testing.T) {
	all, err := benchTiers("all", "")
	if err != nil || len(all) != len(fountain.SupportedKernels()) {
		t.Fatalf("all: %v %v", all, err)
	}
	if got, err := benchTiers("portable", "avx512"); err != nil || len(got) != 1 || got[0] != fountain.KernelsPortable {
		t.Fatalf("flag over env: %v %v", got, err)
	}
	if got, err := benchTiers("", "portable"); err != nil || got[0] != fountain.KernelsPortable {
		t.Fatalf("env: %v %v", got, err)
	}
	if got, err := benchTiers("", ""); err != nil || got[0] == fountain.KernelsAuto || !got[0].Supported() {
		t.Fatalf("auto: %v %v", got, err)
	}
	if _, err := benchTiers("sse9", ""); err == nil {
		t.Fatal("unknown tier accepted")
	}
	for _, k := range []fountain.Kernels{fountain.KernelsAVX2, fountain.KernelsAVX512, fountain.KernelsNEON} {
		if _, err := benchTiers(k.String(), ""); (err == nil) != k.Supported() {
			t.Fatalf("%v: supported %v, error %v", k, k.Supported(), err)
		}
	}
}

func TestBenchCodecKernels(t *testing.T) {
	var out, errb bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run([]string{"bench", "codec", "--size", "64KiB", "--symbol", "1024", "--kernels", "all", "--json"}, env); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res []fountain.BenchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	sup := fountain.SupportedKernels()
	if len(res) != len(sup) {
		t.Fatalf("%d results for %d tiers", len(res), len(sup))
	}
	for i, r := range res {
		if r.Kernels != sup[i].String() || r.EncodeMBps <= 0 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	out.Reset()
	env.getenv = func(k string) string {
		if k == fountain.KernelsEnv {
			return "portable"
		}
		return ""
	}
	if code := run([]string{"bench", "codec", "--size", "64KiB", "--symbol", "1024"}, env); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "kernels   portable") {
		t.Errorf("output does not name the tier: %q", out.String())
	}
	env.getenv = func(k string) string {
		if k == fountain.KernelsEnv {
			return "no-such-tier"
		}
		return ""
	}
	if code := run([]string{"bench", "codec", "--size", "64KiB"}, env); code != exitUsage {
		t.Errorf("unknown tier in the environment: exit %d", code)
	}
}

// ROMAP2P_CPU_PROFILE makes a process write its CPU profile when it exits;
// a directory that cannot take it is an error before anything runs.
func TestCPUProfileEnv(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "ROMAP2P_CPU_PROFILE" {
			return dir
		}
		return ""
	}}
	if code := run([]string{"bench", "codec", "--size", "64KiB", "--symbol", "1024"}, env); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.pprof"))
	if err != nil || len(files) != 1 {
		t.Fatalf("profiles %v (%v)", files, err)
	}
	if st, err := os.Stat(files[0]); err != nil || st.Size() == 0 {
		t.Fatalf("profile %s: %v", files[0], err)
	}
	env.getenv = func(k string) string {
		if k == "ROMAP2P_CPU_PROFILE" {
			return filepath.Join(dir, "missing", "dir")
		}
		return ""
	}
	if code := run([]string{"bench", "codec", "--size", "64KiB"}, env); code != exitFailure {
		t.Errorf("unusable profile directory: exit %d", code)
	}
}
