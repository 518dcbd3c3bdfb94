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
	list := []*command{idCommand()}
	m := make(map[string]*command, len(list))
	for _, c := range list {
		m[c.name] = c
	}
	return m
}

func main() {
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
	err := c.run(ctx, env, args[1:])
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(env.stderr, "romap2p %s: %v\n", c.name, err)
		return exitUsage
	case ctx.Err() != nil:
		fmt.Fprintf(env.stderr, "romap2p %s: interrupted: %v\n", c.name, err)
		return exitInterrupted
	default:
		fmt.Fprintf(env.stderr, "romap2p %s: %v\n", c.name, err)
		return exitFailure
	}
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
	fmt.Fprintln(w, "Environment: ROMAP2P_REPO (identity directory), GOLOG_LOG_LEVEL (e.g. \"roma/node=debug\").")
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

// newFlagSet returns a flag set whose -h prints the command's help.
func newFlagSet(c *command, env *cliEnv) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { printCommandHelp(env.stdout, c, fs) }
	return fs
}

// parseFlags parses args and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
