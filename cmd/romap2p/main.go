// Command romap2p moves large files from one peer to many over libp2p with
// ROMA: an endless fountain-code stream down a tree of TCP connections, where
// a slow receiver never slows anyone else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

// Exit codes, in the spirit of curl and kubo: 0 success, 1 a failure of the
// transfer or the network, 2 bad usage, 130 interrupted.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// command is one subcommand of romap2p.
type command struct {
	name    string
	summary string
	usage   string // arguments after the command name
	example string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv carries what every command needs; no global state.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// usageError marks a mistake on the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func commands() map[string]*command {
	list := []*command{idCommand(), serveCommand(), getCommand(), statusCommand(), benchCommand(), swarmCommand()}
	m := make(map[string]*command, len(list))
	for _, c := range list {
		m[c.name] = c
	}
	return m
}

// defaultMemoryLimit is the soft heap limit of a romap2p process unless
// GOMEMLIMIT says otherwise: the node's buffers are bounded, and the limit
// makes the garbage collector keep the heap near them instead of letting it
// grow to twice the live data.
const defaultMemoryLimit = 256 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	os.Exit(run(os.Args[1:], &cliEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

func run(args []string, env *cliEnv) int {
	gologshim.SetDefaultHandler(logging.SlogHandler())
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := cmds[args[1]]; ok {
				printCommandHelp(env.stdout, c, nil)
				return exitOK
			}
		}
		printUsage(env.stdout, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "romap2p: unknown command %q (see romap2p --help)\n", args[0])
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	err := c.run(ctx, env, args[1:])
	code := exitCode(err, ctx.Err() != nil)
	if msg := errorLine(err); msg != "" && code != exitOK {
		fmt.Fprintf(env.stderr, "romap2p %s: %s\n", c.name, msg)
	}
	return code
}

// interruptedError ends a command stopped by a signal; its message says what
// was left behind.
type interruptedError struct{ msg string }

func (e interruptedError) Error() string { return e.msg }

// exitCode maps a command's outcome to the process exit code.
func exitCode(err error, signalled bool) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		return exitUsage
	case errors.As(err, new(interruptedError)), signalled:
		return exitInterrupted
	default:
		return exitFailure
	}
}

// errorLine renders err as the one line printed on stderr.
func errorLine(err error) string {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ""
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	var ie interruptedError
	if !errors.As(err, &ie) && errors.Is(err, context.Canceled) {
		msg = "interrupted: " + msg
	}
	return msg
}

func printUsage(w io.Writer, cmds map[string]*command) {
	fmt.Fprintln(w, "romap2p: reliable one-to-many file transfer over libp2p (ROMA: fountain codes down a tree of TCP streams)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: romap2p COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'romap2p COMMAND --help' for a command's flags and examples.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Environment:")
	fmt.Fprintln(w, "  ROMAP2P_REPO     directory of the node's identity key and API address")
	fmt.Fprintln(w, "  ROMAP2P_API      address of a running node's local API (for status)")
	fmt.Fprintln(w, "  GOLOG_LOG_LEVEL  log levels, e.g. \"error,roma/node=debug\" (or --log-level)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted.")
}

func printCommandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: romap2p %s %s\n\n%s\n", c.name, c.usage, c.summary)
	if fs != nil {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if c.example != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRight(c.example, "\n"))
	}
}

// newFlagSet returns a flag set whose -h prints the command's help, with the
// --log-level flag every command has.
func newFlagSet(c *command, env *cliEnv) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { printCommandHelp(env.stdout, c, fs) }
	fs.String("log-level", "", "log `LEVEL` for romap2p (debug, info, warn, error) or subsystem=level pairs; logs go to stderr (env GOLOG_LOG_LEVEL)")
	return fs
}
