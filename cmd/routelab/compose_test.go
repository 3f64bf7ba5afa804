package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of docker-compose.yml the edge tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Networks    []string          `yaml:"networks"`
}

func mustReadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

// required matches a compose interpolation that refuses to start when the
// operator has not set the variable: ${NAME:?message}, no default.
func required(name string) *regexp.Regexp {
	return regexp.MustCompile(`^\$\{` + name + `:\?[^}]+\}$`)
}

// TestComposeAdminTokenIsOperatorSet: no service gets a default admin
// token (a known string would open the admin API), and serve's admin API
// has a listener of its own that compose does not publish.
func TestComposeAdminTokenIsOperatorSet(t *testing.T) {
	c := mustReadCompose(t)
	want := required("ROUTELAB_ADMIN_TOKEN")
	for name, s := range c.Services {
		if v, ok := s.Environment["ROUTELAB_ADMIN_TOKEN"]; ok && !want.MatchString(v) {
			t.Errorf("service %s: ROUTELAB_ADMIN_TOKEN = %q, want ${ROUTELAB_ADMIN_TOKEN:?...} (no default)", name, v)
		}
	}
	serve, ok := c.Services["serve"]
	if !ok {
		t.Fatal("no serve service")
	}
	i := slices.Index(serve.Command, "--admin-addr")
	if i < 0 || i+1 >= len(serve.Command) {
		t.Fatalf("serve command %q has no --admin-addr", serve.Command)
	}
	_, adminPort, _ := strings.Cut(serve.Command[i+1], ":")
	for _, p := range serve.Ports {
		if strings.HasSuffix(p, ":"+adminPort) || p == adminPort {
			t.Errorf("serve publishes the admin port: %q", p)
		}
	}
}

// TestComposeClickHouseInternal: ClickHouse (and Kafka) are published on no
// host port and sit on internal networks only; ClickHouse's password is one
// the operator sets, and every DSN uses it.
func TestComposeClickHouseInternal(t *testing.T) {
	c := mustReadCompose(t)
	for _, name := range []string{"clickhouse", "kafka"} {
		s, ok := c.Services[name]
		if !ok {
			t.Fatalf("no %s service", name)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s publishes ports %q", name, s.Ports)
		}
		if len(s.Networks) == 0 {
			t.Errorf("%s is on the default network, which is not internal", name)
		}
		for _, n := range s.Networks {
			if !c.Networks[n].Internal {
				t.Errorf("%s is on network %s, which is not internal", name, n)
			}
		}
	}
	pw := c.Services["clickhouse"].Environment["CLICKHOUSE_PASSWORD"]
	if !required("ROUTELAB_CLICKHOUSE_PASSWORD").MatchString(pw) {
		t.Errorf("CLICKHOUSE_PASSWORD = %q, want ${ROUTELAB_CLICKHOUSE_PASSWORD:?...}", pw)
	}
	for name, s := range c.Services {
		for _, k := range []string{"ROUTELAB_CLICKHOUSE", "ROUTELAB_CLICKHOUSE_DSN"} {
			if v, ok := s.Environment[k]; ok && !strings.Contains(v, ":${ROUTELAB_CLICKHOUSE_PASSWORD:?") {
				t.Errorf("service %s: %s = %q does not use the operator's password", name, k, v)
			}
		}
	}
}
