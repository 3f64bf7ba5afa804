package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

func runPolicyPush(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("policy push", `Publish a policy file (routelab policy push FILE) through serve's admin API: it is
validated, written to the compacted routelab.policies topic and made live on every
serve replica (atomic swap). Returns once it is live on the replica that took it.`)
	af := addAdminFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: routelab policy push FILE")
	}
	doc, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	a, err := af.client(fs, env)
	if err != nil {
		return err
	}
	out, err := a.PushDoc(ctx, doc)
	if err != nil {
		return err
	}
	if *af.jsonOut {
		return printJSON(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "policy %s is live\n", out.Version)
	return nil
}

func runPolicyRollback(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("policy rollback", "Make the previously live policy version live again, on every serve replica.")
	af := addAdminFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := af.client(fs, env)
	if err != nil {
		return err
	}
	out, err := a.Rollback(ctx)
	if err != nil {
		return err
	}
	if *af.jsonOut {
		return printJSON(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "policy %s is live again\n", out.Version)
	return nil
}
