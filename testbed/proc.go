package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	logging "github.com/ipfs/go-log/v2"
)

// log traces the processes the harness runs (GOLOG_LOG_LEVEL=testbed=debug).
var log = logging.Logger("testbed")

// userHZ is the unit of the CPU times in /proc/PID/stat (fixed at 100 on
// Linux whatever the kernel's HZ).
const userHZ = 100

// cpuSeconds reads user + system CPU seconds of a live process.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	s := string(b)
	k := strings.LastIndexByte(s, ')')
	if k < 0 {
		return 0, fmt.Errorf("cpu of %d: malformed stat", pid)
	}
	// After ") " come state (field 3) ... utime is field 14, stime 15.
	f := strings.Fields(s[k+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of %d: short stat", pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu of %d: malformed times", pid)
	}
	return float64(u+st) / userHZ, nil
}

// proc is one process the harness runs in a host's namespace. Its stdout
// and stderr lines go to a log file and to a line callback; the callback
// decides when the process has done its job.
type proc struct {
	host  string
	cmd   *exec.Cmd
	start time.Time

	mu      sync.Mutex
	doneAt  time.Time // when the line callback said done
	cpuDone float64   // CPU seconds then
	cpuEnd  float64   // CPU seconds just before it was stopped
	info    map[string]any
	exitErr error

	exited  chan struct{}
	done    chan struct{}
	doneOne sync.Once
	readers sync.WaitGroup
}

// lineFunc looks at one output line; it returns true when the line shows
// that the process finished its download, and any fields to keep.
type lineFunc func(stdout bool, line string) (done bool, info map[string]any)

// startProc starts cmd, logging its output to logPath.
func startProc(host string, cmd *exec.Cmd, logPath string, onLine lineFunc) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", host, err)
	}
	p := &proc{host: host, cmd: cmd, exited: make(chan struct{}), done: make(chan struct{})}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", host, err)
	}
	errR, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", host, err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %s: %w", host, strings.Join(cmd.Args, " "), err)
	}
	log.Debugw("started", "host", host, "pid", cmd.Process.Pid, "args", cmd.Args)
	var logMu sync.Mutex
	read := func(r io.Reader, stdout bool) {
		defer p.readers.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			tag := "E "
			if stdout {
				tag = "O "
			}
			fmt.Fprintf(logf, "%7.3f %s%s\n", time.Since(p.start).Seconds(), tag, line)
			logMu.Unlock()
			if onLine == nil {
				continue
			}
			if d, info := onLine(stdout, line); d {
				p.markDone(info)
			}
		}
	}
	p.readers.Add(2)
	go read(outR, true)
	go read(errR, false)
	go func() {
		p.readers.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		if st := cmd.ProcessState; st != nil {
			// The namespace wrapper execs the program, so this is its own
			// CPU time.
			c := (st.UserTime() + st.SystemTime()).Seconds()
			if p.cpuDone == 0 && !p.doneAt.IsZero() {
				p.cpuDone = c
			}
			if p.cpuEnd == 0 {
				p.cpuEnd = c
			}
		}
		p.mu.Unlock()
		logf.Close()
		log.Debugw("exited", "host", p.host, "err", err)
		close(p.exited)
	}()
	return p, nil
}

// markDone records the moment (and CPU) the process finished its job.
func (p *proc) markDone(info map[string]any) {
	p.doneOne.Do(func() {
		now := time.Now()
		cpu, _ := cpuSeconds(p.cmd.Process.Pid)
		p.mu.Lock()
		p.doneAt, p.cpuDone, p.info = now, cpu, info
		p.mu.Unlock()
		log.Debugw("done", "host", p.host, "s", now.Sub(p.start).Seconds(), "cpu_s", cpu)
		close(p.done)
	})
}

// stop reads the process's CPU time and then ends it (SIGTERM, then SIGKILL
// after a grace period), waiting for it to exit.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	if c, err := cpuSeconds(p.cmd.Process.Pid); err == nil {
		p.mu.Lock()
		if p.cpuEnd == 0 {
			p.cpuEnd = c
		}
		p.mu.Unlock()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// result returns seconds to done (0 if not done), CPU at done and at stop
// (the larger if the process exited on its own), and the kept fields.
func (p *proc) result() (secs, cpuDone, cpuEnd float64, info map[string]any, exitErr error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.doneAt.IsZero() {
		secs = p.doneAt.Sub(p.start).Seconds()
	}
	cpuEnd = max(p.cpuEnd, p.cpuDone)
	return secs, p.cpuDone, cpuEnd, p.info, p.exitErr
}

// waitAll waits until every proc is done, or exited, or ctx ends.
func waitAll(ctx context.Context, ps []*proc) {
	for _, p := range ps {
		select {
		case <-p.done:
		case <-p.exited:
			// A process can print its result and exit at once: let the
			// readers finish.
			p.readers.Wait()
		case <-ctx.Done():
			return
		}
	}
}

// waitLine waits for a proc to be done, exit, or time out.
func waitDone(ctx context.Context, p *proc) error {
	select {
	case <-p.done:
		return nil
	case <-p.exited:
		select {
		case <-p.done:
			return nil
		default:
		}
		_, _, _, _, err := p.result()
		return fmt.Errorf("%s exited before it was ready: %v (see its log)", p.host, err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", p.host, ctx.Err())
	}
}

// moduleRoot finds the directory holding go.mod from the working directory.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("no go.mod above the working directory: run the testbed from the romap2p checkout")
		}
		d = up
	}
}
