package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenAINodeSDK: the official OpenAI Node SDK (npm "openai", pinned in
// sdk-e2e/package.json) works unchanged against routelab: a generation, a
// streamed generation ending in image_generation.completed with its usage,
// an edit uploading a file as multipart, and an unknown model refused as a
// 4xx the SDK raises with routelab's code. `make test` installs node and
// the package (make browser); without them the test says what is missing.
func TestOpenAINodeSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("needs node (make test installs it): ", err)
	}
	if _, err := os.Stat("sdk-e2e/node_modules/openai"); err != nil {
		t.Skip("needs the openai package: (cd server/sdk-e2e && npm ci) (make test does)")
	}
	e := mustStart(t, nil)
	png := filepath.Join(t.TempDir(), "cat.png")
	if err := os.WriteFile(png, pngBytes(t, 64, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "sdk.mjs")
	cmd.Dir = "sdk-e2e"
	cmd.Env = append(os.Environ(), "BASE_URL="+e.url+"/v1", "API_KEY="+e.key, "PNG="+png)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sdk.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var out struct {
		Generate struct {
			Images, B64 int
			Size        string
		}
		Stream struct {
			Types []string
			B64   int
			Size  string
			Usage bool
		}
		Edit struct {
			Images, B64 int
		}
		UnknownModel struct {
			Status int
			Code   string
		} `json:"unknown_model"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		t.Fatalf("sdk.mjs output: %v\n%s", err, stdout.String())
	}
	if out.Generate.Images != 1 || out.Generate.B64 == 0 {
		t.Errorf("images.generate = %+v, want one b64 image", out.Generate)
	}
	if len(out.Stream.Types) != 1 || out.Stream.Types[0] != "image_generation.completed" || out.Stream.B64 == 0 || out.Stream.Size != "1536x1024" || !out.Stream.Usage {
		t.Errorf("streamed generate = %+v, want one image_generation.completed of 1536x1024 with usage", out.Stream)
	}
	if out.Edit.Images != 1 || out.Edit.B64 == 0 {
		t.Errorf("images.edit = %+v, want one b64 image", out.Edit)
	}
	if out.UnknownModel.Status != 400 || out.UnknownModel.Code != "unknown_model" {
		t.Errorf("unknown model = %+v, want 400 unknown_model", out.UnknownModel)
	}
	if seen := e.router.Seen.Load(); seen == nil || seen.Mode != "edit" || seen.RefCount != 1 {
		t.Errorf("the SDK's edit routed as %+v, want an edit with one reference", seen)
	}
}
