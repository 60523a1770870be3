// Command cfs-gateway runs the ClaudeFS Protocol Gateway and its operator
// tools. Each subcommand parses its own flags; "cfs-gateway CMD --help"
// describes it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "start the gateway", runServe},
		{"validate-config", "check a configuration file and report every problem", runValidateConfig},
		{"fsck", "check the filesystem's metadata and blocks", runFsck},
		{"gc", "remove unreferenced and orphaned blocks", runGC},
		{"quota", "set, get and report quotas (quota set|get|report)", runQuota},
		{"user", "manage users (user add|list|delete|passwd)", runUser},
		{"version", "print the version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "cfs-gateway: the ClaudeFS Protocol Gateway")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: cfs-gateway COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cfs-gateway COMMAND --help' for a command's flags.")
}

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(out)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], out, errOut)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		fmt.Fprintf(errOut, "cfs-gateway %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(errOut, "cfs-gateway: unknown command %q\n\n", args[0])
	usage(errOut)
	return 2
}

// exitCode ends a command with a status after it printed its own message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// newFlags makes a subcommand's flag set with a usage text.
func newFlags(name, synopsis, about string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "Usage: cfs-gateway %s\n\n%s\n", synopsis, about)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(errOut, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags; a mistake has been reported by the flag package.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// subcommand dispatches "quota set" style second-level commands.
func subcommand(name string, args []string, errOut io.Writer, subs map[string]func([]string) error) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		var names []string
		for n := range subs {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(errOut, "Usage: cfs-gateway %s {%s} [flags]\n", name, strings.Join(names, "|"))
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	fn, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(errOut, "cfs-gateway %s: unknown subcommand %q\n", name, args[0])
		return errUsage
	}
	return fn(args[1:])
}
