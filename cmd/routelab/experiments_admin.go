package main

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/server/client"
)

// expAdminOpts are the flags every admin CLI command of experiments takes.
// The admin API is found from --admin-url/--admin-token, then
// ROUTELAB_ADMIN_URL/ROUTELAB_ADMIN_TOKEN, then dev.json under --data-dir
// (what `routelab dev` writes).
type expAdminOpts struct {
	url, token, dataDir string
}

func expAdminFlags(fs *pflag.FlagSet) *expAdminOpts {
	o := &expAdminOpts{}
	fs.StringVar(&o.url, "admin-url", "", "admin API base URL (env ROUTELAB_ADMIN_URL; default from dev.json)")
	fs.StringVar(&o.token, "admin-token", "", "admin token (env ROUTELAB_ADMIN_TOKEN; default from dev.json)")
	fs.StringVar(&o.dataDir, "data-dir", "./.routelab", "routelab dev data dir holding dev.json (env ROUTELAB_DATA_DIR)")
	return o
}

// resolve returns the admin API client; the audit log names $USER.
func (o *expAdminOpts) resolve(fs *pflag.FlagSet, env Env) (*client.Admin, error) {
	envDefault(fs, env, "admin-url", "ROUTELAB_ADMIN_URL")
	envDefault(fs, env, "admin-token", "ROUTELAB_ADMIN_TOKEN")
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	var err error
	if o.url, o.token, err = resolveAdmin(o.url, o.token, o.dataDir); err != nil {
		return nil, err
	}
	if o.url == "" || o.token == "" {
		return nil, errors.New(noAdminHelp)
	}
	return client.New(o.url, o.token, env.Getenv("USER")), nil
}
