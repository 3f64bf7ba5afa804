package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestUsersCreateAndList(t *testing.T) {
	dir := t.TempDir()
	getenv := func(k string) string {
		if k == "ROUTELAB_USER_PASSWORD" {
			return "s3cret-pass"
		}
		return ""
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"users", "--data-dir", dir, "--name", "alice", "--role", "engineer", "create"}, getenv, &out, &errb); err != nil {
		t.Fatalf("users create: %v (%s)", err, errb.String())
	}
	if err := run(context.Background(), []string{"users", "--data-dir", dir, "--name", "alice", "create"}, getenv, &out, &errb); err == nil {
		t.Errorf("creating alice twice succeeded")
	}
	if err := run(context.Background(), []string{"users", "--data-dir", dir, "--name", "bob", "--role", "root", "create"}, getenv, &out, &errb); err == nil {
		t.Errorf("creating a user with role root succeeded")
	}
	out.Reset()
	if err := run(context.Background(), []string{"users", "--data-dir", dir, "--json", "list"}, getenv, &out, &errb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var got struct {
		Users []struct{ Name, Role string } `json:"users"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Users) != 1 || got.Users[0].Name != "alice" || got.Users[0].Role != "engineer" {
		t.Errorf("users list = %+v, want alice/engineer", got.Users)
	}
}
