// Command romap2p moves large files from one peer to many over libp2p with
// ROMA: an endless fountain-code stream down a tree of TCP connections, where
// a slow receiver never slows anyone else.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
	// setup registers the command's flags on fs and returns what runs with
	// the positional arguments once the flags are parsed.
	setup func(fs *pflag.FlagSet, env *cliEnv) func(ctx context.Context, args []string) error
	// run, for a command without setup, parses its own flags (newFlagSet,
	// parseArgs) from everything after the command name.
	run func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv carries what every command needs; no global state.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// self is how a shell runs this program, for commands printed to paste.
	self string
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
	os.Exit(run(os.Args[1:], &cliEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, self: selfCommand(os.Args[0])}))
}

func run(args []string, env *cliEnv) int {
	gologshim.SetDefaultHandler(logging.SlogHandler())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	stopProfile, err := startCPUProfile(env.getenv("ROMAP2P_CPU_PROFILE"))
	if err != nil {
		fmt.Fprintf(env.stderr, "romap2p: %v\n", err)
		return exitFailure
	}
	defer stopProfile()
	root := rootCommand(env)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	code := exitCode(err, ctx.Err() != nil)
	if msg := errorLine(err); msg != "" && code != exitOK {
		name := "romap2p"
		if cmd != nil && cmd != root {
			name = cmd.CommandPath()
		}
		if code == exitUsage {
			msg += fmt.Sprintf(" (see '%s --help')", name)
		}
		fmt.Fprintf(env.stderr, "%s: %s\n", name, msg)
	}
	return code
}

// startCPUProfile profiles the process into dir/PID.pprof when dir is set
// (for `go tool pprof`); the returned function stops and writes it.
func startCPUProfile(dir string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%d.pprof", os.Getpid())))
	if err != nil {
		return nil, fmt.Errorf("ROMAP2P_CPU_PROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("ROMAP2P_CPU_PROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// rootCommand builds the command tree: one cobra command per romap2p
// command, GNU-style flags (pflag), help and shell completion.
func rootCommand(env *cliEnv) *cobra.Command {
	cmds := commands()
	root := &cobra.Command{
		Use:           "romap2p",
		Short:         "reliable one-to-many file transfer over libp2p (ROMA: fountain codes down a tree of TCP streams)",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Sprintf("unknown command %q", args[0])}
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error {
			return usageError{"a COMMAND is needed: get, serve, id, status, swarm or bench"}
		},
	}
	root.SetOut(env.stdout)
	root.SetErr(env.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.PersistentFlags().String("log-level", "", "log `LEVEL` for romap2p (debug, info, warn, error) or subsystem=level pairs; logs go to stderr (env GOLOG_LOG_LEVEL)")
	root.SetUsageTemplate(root.UsageTemplate() + `
Environment:
  ROMAP2P_REPO     directory of the node's identity key, config and API address
  ROMAP2P_API      address of a running node's local API (for status)
  GOLOG_LOG_LEVEL  log levels, e.g. "error,roma/node=debug" (or --log-level)
  ROMAP2P_CPU_PROFILE  directory: each process writes a CPU profile there (PID.pprof) when it exits

Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted.
`)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		root.AddCommand(cobraCommand(cmds[n], env))
	}
	root.InitDefaultCompletionCmd()
	return root
}

// cobraCommand turns a romap2p command into a cobra command.
func cobraCommand(c *command, env *cliEnv) *cobra.Command {
	cc := &cobra.Command{
		Use:     c.name + " " + c.usage,
		Short:   c.summary,
		Example: strings.TrimRight(c.example, "\n"),
	}
	if c.setup == nil {
		// The command parses its own flags.
		cc.DisableFlagParsing = true
		cc.RunE = func(cmd *cobra.Command, args []string) error { return c.run(cmd.Context(), env, args) }
		return cc
	}
	action := c.setup(cc.Flags(), env)
	cc.RunE = func(cmd *cobra.Command, args []string) error {
		if err := applyLogLevel(cmd.Flags()); err != nil {
			return err
		}
		return action(cmd.Context(), args)
	}
	return cc
}

// applyLogLevel applies --log-level if it was given.
func applyLogLevel(fs *pflag.FlagSet) error {
	if f := fs.Lookup("log-level"); f != nil && f.Value.String() != "" {
		if err := setLogLevel(f.Value.String()); err != nil {
			return usageError{fmt.Sprintf("--log-level: %v", err)}
		}
	}
	return nil
}

// interruptedError ends a command stopped by a signal; its message says what
// was left behind.
type interruptedError struct{ msg string }

func (e interruptedError) Error() string { return e.msg }

// exitCode maps a command's outcome to the process exit code.
func exitCode(err error, signalled bool) int {
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
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
	if err == nil || errors.Is(err, pflag.ErrHelp) {
		return ""
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	var ie interruptedError
	if !errors.As(err, &ie) && errors.Is(err, context.Canceled) {
		msg = "interrupted: " + msg
	}
	return msg
}

func printCommandHelp(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: romap2p %s %s\n\n%s\n", c.name, c.usage, c.summary)
	if fs != nil {
		fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
	}
	if c.example != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRight(c.example, "\n"))
	}
}

// newFlagSet returns a flag set whose -h prints the command's help, with the
// --log-level flag every command has.
func newFlagSet(c *command, env *cliEnv) *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { printCommandHelp(env.stdout, c, fs) }
	fs.String("log-level", "", "log `LEVEL` for romap2p (debug, info, warn, error) or subsystem=level pairs; logs go to stderr (env GOLOG_LOG_LEVEL)")
	return fs
}

// execCommand runs one command alone with args, as `romap2p NAME args`
// would, and returns its error.
func execCommand(ctx context.Context, c *command, env *cliEnv, args []string) error {
	cc := cobraCommand(c, env)
	cc.SilenceErrors, cc.SilenceUsage = true, true
	cc.SetOut(env.stdout)
	cc.SetErr(env.stderr)
	cc.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	cc.Flags().String("log-level", "", "log level")
	cc.SetArgs(args)
	return cc.ExecuteContext(ctx)
}
