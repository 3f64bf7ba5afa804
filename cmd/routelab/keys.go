package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/server/client"
)

// adminFlags are the flags of admin CLI commands: the admin API comes from
// --admin-url/--admin-token, then ROUTELAB_ADMIN_URL/ROUTELAB_ADMIN_TOKEN,
// then dev.json under --data-dir.
type adminFlags struct {
	url, token, dataDir *string
	jsonOut             *bool
}

func addAdminFlags(fs *pflag.FlagSet) adminFlags {
	return adminFlags{
		url:     fs.String("admin-url", "", "serve's base URL (env ROUTELAB_ADMIN_URL; default from DATA_DIR/dev.json)"),
		token:   fs.String("admin-token", "", "admin token (env ROUTELAB_ADMIN_TOKEN; default from DATA_DIR/dev.json)"),
		dataDir: fs.String("data-dir", "./.routelab", "where routelab dev wrote dev.json (env ROUTELAB_DATA_DIR)"),
		jsonOut: fs.Bool("json", false, "print one JSON object on the last line of stdout"),
	}
}

func (a adminFlags) client(fs *pflag.FlagSet, env Env) (*client.Admin, error) {
	envDefault(fs, env, "admin-url", "ROUTELAB_ADMIN_URL")
	envDefault(fs, env, "admin-token", "ROUTELAB_ADMIN_TOKEN")
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	u, tok, err := resolveAdmin(*a.url, *a.token, *a.dataDir)
	if err != nil {
		return nil, err
	}
	if u == "" {
		return nil, errors.New(noAdminHelp)
	}
	return client.New(u, tok, cliActor(env, "cli")), nil
}

func keysSubcommands() map[string]command {
	return map[string]command{
		"create": {"create an API key for a tenant; prints the secret once", runKeysCreate},
		"list":   {"list API keys (ids, tenants, revoked; never secrets)", runKeysList},
		"revoke": {"revoke an API key by id; it answers 401 from then on", runKeysRevoke},
	}
}

func runKeys(ctx context.Context, env Env, args []string) error {
	return group{Intro: "Usage: routelab keys SUBCOMMAND [flags]\n\nManage tenant API keys through serve's admin API. Only hashes are stored.\n\nSubcommands:",
		Width: 8, NoArgs: errUsage, Unknown: "unknown keys subcommand %q", Subs: keysSubcommands()}.run(ctx, env, args)
}

func runKeysCreate(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("keys create", "Create an API key for --tenant. The secret is printed once; only its SHA-256 is stored.")
	tenant := fs.String("tenant", "", "tenant the key belongs to (required)")
	name := fs.String("name", "", "a label for the key")
	af := addAdminFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tenant == "" {
		return errors.New("--tenant is required")
	}
	a, err := af.client(fs, env)
	if err != nil {
		return err
	}
	k, err := a.CreateKey(ctx, *tenant, *name)
	if err != nil {
		return err
	}
	if *af.jsonOut {
		return printJSON(env.Stdout, k)
	}
	fmt.Fprintf(env.Stderr, "created key %s for tenant %s; the secret is shown only now:\n", k.ID, k.Tenant)
	fmt.Fprintln(env.Stdout, k.Secret)
	return nil
}

func runKeysList(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("keys list", "List API keys: id, tenant, name, created, revoked. Secrets are never shown.")
	af := addAdminFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := af.client(fs, env)
	if err != nil {
		return err
	}
	keys, err := a.Keys(ctx)
	if err != nil {
		return err
	}
	if *af.jsonOut {
		return printJSON(env.Stdout, map[string][]client.Key{"keys": keys})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tNAME\tCREATED\tREVOKED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", k.ID, k.Tenant, k.Name, time.Unix(k.Created, 0).UTC().Format(time.RFC3339), k.Revoked)
	}
	return tw.Flush()
}

func runKeysRevoke(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("keys revoke", "Revoke the API key with the given id (routelab keys revoke KEY_ID).")
	af := addAdminFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: routelab keys revoke KEY_ID")
	}
	a, err := af.client(fs, env)
	if err != nil {
		return err
	}
	var out map[string]any
	if err := a.Do(ctx, http.MethodDelete, "/admin/keys/"+fs.Arg(0), nil, &out); err != nil {
		return err
	}
	if *af.jsonOut {
		return printJSON(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "revoked %s\n", fs.Arg(0))
	return nil
}
