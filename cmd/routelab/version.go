package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

func runVersion(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("version", "Print the build version.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	fmt.Fprintln(env.Stdout, "routelab", v)
	return nil
}
