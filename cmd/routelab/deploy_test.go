package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// The deployment files cannot run here (no Docker engine, no cluster), so
// these tests keep them honest by reading: every routelab command they run
// parses, and every ROUTELAB_* variable they set is one routelab reads.

// deployedCommands returns the routelab argument lists in
// docker-compose.yml and deploy/*.yaml, by where they appear.
func deployedCommands(t *testing.T) map[string][]string {
	t.Helper()
	cmds := map[string][]string{}
	c := mustReadCompose(t)
	for name, s := range c.Services {
		if s.Image == "routelab:latest" {
			cmds["docker-compose.yml "+name] = s.Command
		}
	}
	for file, docs := range k8sDocs(t) {
		for _, d := range docs {
			for _, ct := range podContainers(d) {
				if ct.Image == "routelab" {
					cmds[file+" "+ct.Name] = ct.Args
				}
			}
		}
	}
	if len(cmds) < 8 {
		t.Fatalf("found %d routelab commands in the deployment files, want the serve, ingest, console, monitor and jobs ones of both", len(cmds))
	}
	return cmds
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
}

type k8sPodSpec struct {
	Containers []k8sContainer `yaml:"containers"`
}

// k8sDoc is the part of a manifest that holds containers (Deployment,
// CronJob) or environment (ConfigMap, Secret).
type k8sDoc struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Template struct {
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		JobTemplate struct {
			Spec struct {
				Template struct {
					Spec k8sPodSpec `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

func podContainers(d k8sDoc) []k8sContainer {
	return append(d.Spec.Template.Spec.Containers, d.Spec.JobTemplate.Spec.Template.Spec.Containers...)
}

func k8sDocs(t *testing.T) map[string][]k8sDoc {
	t.Helper()
	files, err := filepath.Glob("../../deploy/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/*.yaml manifests (%v)", err)
	}
	out := map[string][]k8sDoc{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d k8sDoc
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], d)
		}
	}
	return out
}

// TestDeployedCommandsParse: each command with --help appended must get to
// its usage, which it only does once every flag before it parsed.
func TestDeployedCommandsParse(t *testing.T) {
	for where, args := range deployedCommands(t) {
		var out, errb bytes.Buffer
		err := run(t.Context(), append(append([]string{}, args...), "--help"), func(string) string { return "" }, &out, &errb)
		if err != nil && !errors.Is(err, pflag.ErrHelp) {
			t.Errorf("%s: routelab %s: %v", where, strings.Join(args, " "), err)
		}
	}
}

var envName = regexp.MustCompile(`ROUTELAB_[A-Z0-9_]+`)

// TestDeployedEnvIsRead: a misspelt variable is silently ignored, so every
// ROUTELAB_* name the deployment files set must appear in routelab's code.
func TestDeployedEnvIsRead(t *testing.T) {
	read := map[string]bool{}
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && p != "../.." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, n := range envName.FindAll(b, -1) {
			read[string(n)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	c := mustReadCompose(t)
	for name, s := range c.Services {
		for k := range s.Environment {
			set[k] = "docker-compose.yml " + name
		}
	}
	for file, docs := range k8sDocs(t) {
		for _, d := range docs {
			for k := range d.Data {
				set[k] = file + " " + d.Kind
			}
			for k := range d.StringData {
				set[k] = file + " " + d.Kind
			}
		}
	}
	for k, where := range set {
		if strings.HasPrefix(k, "ROUTELAB_") && !read[k] {
			t.Errorf("%s sets %s, which no routelab code reads", where, k)
		}
	}
}
