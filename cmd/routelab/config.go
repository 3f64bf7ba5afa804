package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/blob/s3blob"
	"github.com/routelab/routelab/datasets"
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

// blobS3Flag is serve's and the console's --blob-s3: both must name the
// same bucket for the console to show what serve sampled.
func blobS3Flag(fs *pflag.FlagSet) {
	fs.String("blob-s3", "", "keep blobs in an S3-compatible bucket instead of --blob-dir: http(s)://HOST[:PORT]/BUCKET[/PREFIX][?region=R], e.g. http://minio:9000/routelab-blobs; credentials from ROUTELAB_S3_ACCESS_KEY/ROUTELAB_S3_SECRET_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; retention is the bucket's lifecycle rule (env ROUTELAB_BLOB_S3)")
}

// blobS3Config reads --blob-s3 (or ROUTELAB_BLOB_S3) and the credentials
// beside it; nil when blobs stay on the filesystem.
func blobS3Config(fs *pflag.FlagSet, env Env) (*s3blob.Config, error) {
	envDefault(fs, env, "blob-s3", "ROUTELAB_BLOB_S3")
	raw, err := fs.GetString("blob-s3")
	if err != nil || raw == "" {
		return nil, nil
	}
	c, err := s3blob.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("--blob-s3: %w", err)
	}
	c = c.Credentials(env.Getenv)
	return &c, nil
}

// catalogHelp documents --catalog of serve and dev.
const catalogHelp = `model catalog: a file, or a shipped catalog's name ("vendors": the current OpenAI, Google, Ideogram, ByteDance and Black Forest Labs image models with their native sizes and prices, served by the simulator for want of a vendor key); default the simulated catalog`

// policyForCatalog is the policy to start with: --policy when given, else
// the shipped policy of a shipped catalog (vendors), else policy.
func policyForCatalog(fs *pflag.FlagSet, policy, catalog string) string {
	if fs.Changed("policy") {
		return policy
	}
	if p := datasets.CatalogPolicy(catalog); p != "" {
		return p
	}
	return policy
}

// maskURL hides the password of a URL in printed configuration.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return u.String()
}
