package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/romap2p/romap2p/treebuild"
)

// runConfig is one `run` invocation.
type runConfig struct {
	Matrix       string   `json:"matrix"`
	Source       string   `json:"source"`
	SizeBytes    int64    `json:"size_bytes"`
	Scale        float64  `json:"scale"`
	UplinkMbit   float64  `json:"uplink_mbit"`
	DownlinkMbit float64  `json:"downlink_mbit"`
	StaggerS     float64  `json:"stagger_s"`
	Runs         int      `json:"runs"`
	Systems      []string `json:"systems"`
	TimeoutS     float64  `json:"timeout_s"`
	CC           string   `json:"cc,omitempty"`
	// Saboteur is the host that runs the saboteur build in the systems
	// named SYSTEM+sab-MODE, one per mode of Sabotage.
	Saboteur string   `json:"saboteur,omitempty"`
	Sabotage []string `json:"sabotage,omitempty"`

	out     string
	romap2p string
	keep    bool
	wait    bool
}

// caseInfo is result.json's "case": the configuration and what the matrix
// predicts for the whole swarm.
type caseInfo struct {
	runConfig
	Hosts      []string `json:"hosts"`
	Receivers  int      `json:"receivers"`
	BoundS     float64  `json:"bound_s"`
	BoundTerms struct {
		SourceS    float64 `json:"source_s"`
		AggregateS float64 `json:"aggregate_s"`
		FlowS      float64 `json:"flow_s"`
	} `json:"bound_terms"`
	Started string `json:"started"`
	Cores   int    `json:"cores"`
	Go      string `json:"go"`
}

// recvResult is one receiver in one run.
type recvResult struct {
	Seconds   float64 `json:"seconds"`
	OK        bool    `json:"ok"`
	CPUS      float64 `json:"cpu_s"`
	CPUDoneS  float64 `json:"cpu_done_s"`
	SentBytes int64   `json:"sent_bytes"`
	RecvBytes int64   `json:"recv_bytes"`
	// DoneBytes is what its downlink carried from launch to completion
	// (the first 250 ms sample at or after it): the cost of its download,
	// where RecvBytes also counts the time it served others afterwards.
	DoneBytes int64 `json:"recv_bytes_done,omitempty"`
	// RetransSegs is how many TCP segments this host sent again.
	RetransSegs int64 `json:"retrans_segs"`
	// StartS is from launch until 2 % of the file's bytes came in on its
	// downlink; TailS from 90 % of them until completion (250 ms samples).
	StartS float64 `json:"start_s"`
	TailS  float64 `json:"tail_s"`
	// DownRate is what its downlink carried in each second after launch
	// until completion, MiB/s (from the 250 ms samples).
	DownRate  []float64 `json:"downlink_mib_per_s,omitempty"`
	ReceivedK *float64  `json:"received_k,omitempty"`
	Upstreams []string  `json:"upstreams,omitempty"`
	// Blamed are the peers (host names) a romap2p receiver blamed for bad
	// data by its completion, with when (RFC 3339) and why.
	Blamed []blameSeen `json:"blamed,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// sourceResult is the source in one run.
type sourceResult struct {
	CPUS        float64 `json:"cpu_s"`
	SentBytes   int64   `json:"sent_bytes"`
	RetransSegs int64   `json:"retrans_segs"`
	// HelperCPUS is the CPU of helpers on the source (the tracker).
	HelperCPUS float64 `json:"helper_cpu_s,omitempty"`
}

// runResult is one run of one system.
type runResult struct {
	Run       int                    `json:"run"`
	WholeS    float64                `json:"whole_s"`
	CPUS      float64                `json:"cpu_s"`
	Receivers map[string]*recvResult `json:"receivers"`
	Source    sourceResult           `json:"source"`
	// Sabotage is the saboteur's run (systems SYSTEM+sab-MODE); its host
	// is not among Receivers.
	Sabotage *sabotageResult `json:"sabotage,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// systemResult is every run of one system.
type systemResult struct {
	Runs []*runResult `json:"runs"`
}

// result is result.json.
type result struct {
	Case      caseInfo                 `json:"case"`
	Receivers map[string]receiverBound `json:"receivers"`
	Systems   map[string]*systemResult `json:"systems"`
}

// runCase runs every system cfg.Runs times on one topology and writes the
// results into cfg.out.
func runCase(ctx context.Context, cfg runConfig) (*result, error) {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	m, err := loadMatrix(cfg.Matrix, cfg.UplinkMbit, cfg.DownlinkMbit, cfg.Scale)
	if err != nil {
		return nil, err
	}
	src, ok := m.Index(cfg.Source)
	if !ok {
		return nil, fmt.Errorf("run: source %q is not a host of %s (hosts: %v)", cfg.Source, cfg.Matrix, m.Hosts())
	}
	a, err := analyse(m, src, float64(cfg.SizeBytes))
	if err != nil {
		return nil, err
	}
	// Default time limits: ten times the slowest bound for the swarms;
	// for HTTP, three times the receivers' direct transfers one after the
	// other (what `direct` does), so neither cuts a slow case short.
	worst, serial := a.Whole.Seconds, 0.0
	for _, rb := range a.Receivers {
		worst = math.Max(worst, rb.BoundS)
		serial += float64(cfg.SizeBytes) / treebuild.FromMbit(rb.DirectMbit)
	}
	limit := func(system string) time.Duration {
		s := 60 + 10*worst
		if system == "http" || system == "direct" {
			s = 60 + 3*serial
		}
		if cfg.TimeoutS > 0 {
			s = cfg.TimeoutS
		}
		return time.Duration(math.Ceil(s) * float64(time.Second))
	}
	res := &result{Receivers: a.Receivers, Systems: map[string]*systemResult{}}
	res.Case.runConfig = cfg
	res.Case.Hosts = m.Hosts()
	res.Case.Receivers = m.Len() - 1
	res.Case.BoundS = a.Whole.Seconds
	res.Case.BoundTerms.SourceS = a.Whole.Source
	res.Case.BoundTerms.AggregateS = a.Whole.Aggregate
	res.Case.BoundTerms.FlowS = a.Whole.Flow
	res.Case.Started = time.Now().UTC().Format(time.RFC3339)
	res.Case.Cores = runtime.NumCPU()
	res.Case.Go = runtime.Version()
	if err := checkTools(); err != nil {
		return nil, err
	}

	work, err := os.MkdirTemp("", "romap2p-testbed-")
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	defer func() {
		if cfg.keep {
			say("kept %s", work)
		} else {
			os.RemoveAll(work)
		}
	}()
	sab := -1
	if cfg.Saboteur != "" {
		i, ok := m.Index(cfg.Saboteur)
		if !ok || i == src {
			return nil, fmt.Errorf("run: --saboteur %q is not a receiver of %s (hosts: %v)", cfg.Saboteur, cfg.Matrix, m.Hosts())
		}
		sab = i
	}
	tl, err := newTools(ctx, work, cfg.romap2p)
	if err != nil {
		return nil, err
	}
	if sab >= 0 {
		if err := tl.buildSaboteur(ctx, work); err != nil {
			return nil, err
		}
	}
	b := &bed{src: src, sab: sab, size: cfg.SizeBytes, tools: tl,
		stagger: time.Duration(cfg.StaggerS * float64(time.Second)),
		timeout: limit}
	for i := range m.Len() {
		if i != src {
			b.recv = append(b.recv, i)
		}
	}
	if slices.ContainsFunc(cfg.Systems, func(s string) bool { return s == "bittorrent" }) {
		if err := tl.ensureBitTorrent(ctx); err != nil {
			return nil, err
		}
	}
	if b.peerHost, err = tl.peerIDs(ctx, m.Hosts()); err != nil {
		return nil, err
	}
	// The file: random bytes, named so that every system shows its name.
	b.file = filepath.Join(work, "file.bin")
	if b.sha, err = randomFile(b.file, cfg.SizeBytes); err != nil {
		return nil, err
	}

	topo, err := upTopology(ctx, m, cfg.wait, cfg.CC)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := topo.Close(); err != nil {
			say("cleanup: %v", err)
		}
	}()
	b.topo = topo
	say("topology up: %d hosts, source %s, %s, scale %g; whole-swarm bound %.1f s; time limit per run %s (http, direct: %s)",
		m.Len(), cfg.Source, humanSize(cfg.SizeBytes), cfg.Scale, a.Whole.Seconds, limit("romap2p"), limit("direct"))

	for _, s := range cfg.Systems {
		res.Systems[s] = &systemResult{}
	}
	for r := range cfg.Runs {
		// Alternate: each run starts one system further along, so that no
		// system always runs first (or right after the same one).
		order := append(slices.Clone(cfg.Systems[r%len(cfg.Systems):]), cfg.Systems[:r%len(cfg.Systems)]...)
		for _, s := range order {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			dir := filepath.Join(work, fmt.Sprintf("run%d-%s", r+1, s))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return res, err
			}
			rr, err := b.measure(ctx, s, dir, r+1)
			if err != nil {
				return res, err
			}
			res.Systems[s].Runs = append(res.Systems[s].Runs, rr)
			say("run %d %-15s whole %.2f s  cpu %.1f s  ok %d/%d%s", r+1, s, rr.WholeS, rr.CPUS,
				countOK(rr), len(rr.Receivers), errSuffix(rr.Error))
			if err := writeResults(cfg.out, res); err != nil {
				return res, err
			}
			if cfg.keep {
				_ = copyLogs(dir, filepath.Join(cfg.out, "logs", filepath.Base(dir)))
			}
			// The copies are checked: drop them, so that long cases do not
			// fill the disk.
			if err := os.RemoveAll(dir); err != nil {
				return res, err
			}
		}
	}
	return res, writeResults(cfg.out, res)
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return "  error: " + e
}

func countOK(rr *runResult) int {
	n := 0
	for _, r := range rr.Receivers {
		if r.OK {
			n++
		}
	}
	return n
}

// measure runs one system once and collects its figures.
func (b *bed) measure(ctx context.Context, system, dir string, run int) (*runResult, error) {
	before, err := b.topo.counters(ctx)
	if err != nil {
		return nil, err
	}
	// Sample every downlink while the system runs, to see when each
	// receiver's bytes started to flow and how long its tail was.
	sctx, scancel := context.WithCancel(ctx)
	samples := make(chan []sample, 1)
	go func() { samples <- b.sampleDownlinks(sctx, 250*time.Millisecond) }()
	o := b.runSystem(ctx, system, dir)
	scancel()
	series := <-samples
	o.stopAll()
	after, err := b.topo.counters(ctx)
	if err != nil {
		return nil, err
	}
	rr := &runResult{Run: run, Receivers: map[string]*recvResult{}}
	if o.err != nil {
		rr.Error = o.err.Error()
	}
	// The whole swarm's time runs from the first receiver's launch (the
	// source's start-up, a seeder's hashing, are not in it) to the last
	// receiver's completion.
	// A saboteur's own download is in neither.
	var first, last time.Time
	for i, p := range o.recv {
		if i != o.sab && (first.IsZero() || p.start.Before(first)) {
			first = p.start
		}
	}
	seen := map[string]peerSeen{}
	for _, i := range b.recv {
		r := &recvResult{
			SentBytes:   after[i].Sent - before[i].Sent,
			RecvBytes:   after[i].Recv - before[i].Recv,
			RetransSegs: after[i].Retrans - before[i].Retrans,
		}
		p := o.recv[i]
		if i == o.sab {
			rr.Sabotage = &sabotageResult{Saboteur: r}
		} else {
			rr.Receivers[b.name(i)] = r
		}
		if p != nil && o.sab >= 0 {
			seen[b.name(i)] = p.seen()
		}
		if p == nil {
			r.Error = "not started"
			continue
		}
		secs, cpuDone, cpuEnd, info, exitErr := p.result()
		r.CPUS, r.CPUDoneS = cpuEnd, cpuDone
		rr.CPUS += cpuEnd
		if secs == 0 {
			r.Error = fmt.Sprintf("did not finish (exit: %v)", exitErr)
			continue
		}
		r.Seconds = secs
		r.StartS, r.TailS = phases(series, i, before[i].Recv, b.size, p.start, secs)
		r.DoneBytes = bytesAt(series, i, before[i].Recv, p.start.Add(time.Duration(secs*float64(time.Second))))
		r.DownRate = perSecond(series, i, before[i].Recv, p.start, secs)
		if end := p.start.Add(time.Duration(secs * float64(time.Second))); end.After(last) && i != o.sab {
			last = end
		}
		if v, ok := info["received_k"].(float64); ok {
			r.ReceivedK = &v
		}
		if v, ok := info["upstreams"].([]string); ok {
			r.Upstreams = v
		}
		if v, ok := info["blamed"].([]blameSeen); ok && len(v) > 0 {
			for _, bl := range v {
				if h, ok := b.peerHost[bl.Peer]; ok {
					bl.Peer = h
				}
				r.Blamed = append(r.Blamed, bl)
			}
		}
		sum, err := fileSHA(o.out[i])
		if err != nil {
			r.Error = err.Error()
		} else if sum != b.sha {
			r.Error = errNotOK.Error()
		} else {
			r.OK = true
		}
	}
	if !last.IsZero() {
		rr.WholeS = last.Sub(first).Seconds()
	}
	if o.source != nil {
		_, _, c, _, _ := o.source.result()
		rr.Source.CPUS = c
		rr.CPUS += c
	}
	for _, p := range o.extra {
		_, _, c, _, _ := p.result()
		rr.Source.HelperCPUS += c
		rr.CPUS += c
	}
	rr.Source.SentBytes = after[b.src].Sent - before[b.src].Sent
	rr.Source.RetransSegs = after[b.src].Retrans - before[b.src].Retrans
	if o.sab >= 0 {
		// The saboteur wrote its record when it was stopped.
		own := rr.Sabotage.Saboteur
		rec, err := readSabRecord(o.sabRecord)
		rr.Sabotage = judgeSabotage(o.sabMode, b.name(o.sab), b.peerOf(o.sab), rec, seen, b.peerHost)
		rr.Sabotage.Saboteur = own
		if err != nil {
			rr.Sabotage.Error = err.Error()
		}
	}
	return rr, nil
}

// sample is every host's downlink counter at one moment.
type sample struct {
	at    time.Time
	bytes []int64
}

// sampleDownlinks reads the downlink counters every period until ctx ends.
func (b *bed) sampleDownlinks(ctx context.Context, period time.Duration) []sample {
	var out []sample
	tk := time.NewTicker(period)
	defer tk.Stop()
	for {
		if v, err := b.topo.downlinkBytes(ctx); err == nil {
			out = append(out, sample{at: time.Now(), bytes: v})
		}
		select {
		case <-ctx.Done():
			return out
		case <-tk.C:
		}
	}
}

// phases returns how long host i took from launch to 2 % of size received,
// and from 90 % received to done (secs after launch).
func phases(series []sample, i int, base, size int64, launch time.Time, secs float64) (startS, tailS float64) {
	var t2, t90 time.Time
	for _, s := range series {
		got := s.bytes[i] - base
		if t2.IsZero() && got >= size/50 {
			t2 = s.at
		}
		if t90.IsZero() && got >= size*9/10 {
			t90 = s.at
		}
	}
	if !t2.IsZero() {
		startS = math.Max(0, t2.Sub(launch).Seconds())
	}
	if !t90.IsZero() {
		tailS = math.Max(0, secs-t90.Sub(launch).Seconds())
	}
	return startS, tailS
}

// perSecond returns what host i's downlink carried in each whole second
// from launch until secs after it, MiB/s, rounded to 0.01.
func perSecond(series []sample, i int, base int64, launch time.Time, secs float64) []float64 {
	var out []float64
	prev := int64(0)
	for k := 1; float64(k-1) < secs; k++ {
		got := bytesAt(series, i, base, launch.Add(time.Duration(k)*time.Second))
		out = append(out, math.Round(float64(got-prev)/(1<<20)*100)/100)
		prev = got
	}
	return out
}

// bytesAt returns what host i's downlink carried from base until the first
// sample at or after t (the last sample when none is that late).
func bytesAt(series []sample, i int, base int64, t time.Time) int64 {
	var got int64
	for _, s := range series {
		got = s.bytes[i] - base
		if !s.at.Before(t) {
			break
		}
	}
	return got
}

// randomFile writes size random bytes to path and returns their SHA-256.
func randomFile(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("file: %w", err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		f.Close()
		return "", fmt.Errorf("file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("file: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileSHA returns the SHA-256 of a file.
func fileSHA(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("output: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("output: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyLogs copies the *.log files of a run directory.
func copyLogs(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	logs, _ := filepath.Glob(filepath.Join(from, "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(l)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeResults writes result.json, result.md and the chart.
func writeResults(dir string, res *result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("result.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "result.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("result.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "result.md"), []byte(markdown(res)), 0o644); err != nil {
		return fmt.Errorf("result.md: %w", err)
	}
	for _, ext := range []string{"svg", "png"} {
		if err := chart(res, filepath.Join(dir, "result."+ext)); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
	}
	return nil
}

// sortedReceivers returns the receivers by bound, fastest first.
func sortedReceivers(res *result) []string {
	names := make([]string, 0, len(res.Receivers))
	for h := range res.Receivers {
		names = append(names, h)
	}
	sort.Slice(names, func(i, j int) bool {
		bi, bj := res.Receivers[names[i]].BoundS, res.Receivers[names[j]].BoundS
		if bi != bj {
			return bi < bj
		}
		return names[i] < names[j]
	})
	return names
}

// humanSize prints a byte count in MiB or KiB.
func humanSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}
