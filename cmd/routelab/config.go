package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// newFlagSet makes a subcommand's flag set; --help prints the description and
// the flags and returns pflag.ErrHelp.
func newFlagSet(name, description string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: routelab %s [flags]\n\n%s\n\nFlags:\n%s", name, description, fs.FlagUsages())
	}
	fs.SetOutput(os.Stderr)
	return fs
}

// envDefault returns the ROUTELAB_* environment value for a flag when the flag
// was not set on the command line: precedence is flag, then env, then default.
func envDefault(fs *pflag.FlagSet, env Env, flag, envName string) {
	if fs.Changed(flag) {
		return
	}
	if v := env.Getenv(envName); v != "" {
		_ = fs.Set(flag, v)
	}
}

// mask hides a secret in printed configuration.
func mask(s string) string {
	if len(s) <= 4 {
		return strings.Repeat("*", len(s))
	}
	return s[:2] + strings.Repeat("*", len(s)-4) + s[len(s)-2:]
}
