package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/routelab/routelab/providers"
)

// TestStreamOpenAISDK: the official OpenAI Go SDK's streaming calls work
// unchanged against routelab: a generation and an edit each end with
// their completed event carrying the image at the requested size.
func TestStreamOpenAISDK(t *testing.T) {
	e := mustStart(t, nil)
	client := openai.NewClient(option.WithBaseURL(e.url+"/v1/"), option.WithAPIKey(e.key), option.WithMaxRetries(0))
	ctx := context.Background()

	gen := client.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{
		Prompt: "a cute baby sea otter", Model: openai.ImageModel("auto"),
		Size: openai.ImageGenerateParamsSize1536x1024, PartialImages: openai.Int(2),
	})
	var got []openai.ImageGenStreamEventUnion
	for gen.Next() {
		got = append(got, gen.Current())
	}
	if err := gen.Err(); err != nil {
		t.Fatalf("GenerateStreaming: %v", err)
	}
	if len(got) != 1 || got[0].Type != "image_generation.completed" || got[0].Size != "1536x1024" {
		t.Fatalf("generation events = %d %+v, want one image_generation.completed of size 1536x1024", len(got), types(got))
	}
	if w, h := pngSize(t, got[0].B64JSON); w != 1536 || h != 1024 {
		t.Errorf("completed image is %dx%d, want 1536x1024", w, h)
	}
	if !got[0].JSON.Usage.Valid() {
		t.Errorf("completed event has no usage: %s", got[0].RawJSON())
	}

	edit := client.Images.EditStreaming(ctx, openai.ImageEditParams{
		Image:  openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(pngBytes(t, 64, 64)), "cat.png", "image/png")},
		Prompt: "give the cat a hat", Model: openai.ImageModel("auto"), Size: openai.ImageEditParamsSize1024x1024,
	})
	var edits []string
	for edit.Next() {
		edits = append(edits, edit.Current().Type)
	}
	if err := edit.Err(); err != nil || len(edits) != 1 || edits[0] != "image_edit.completed" {
		t.Fatalf("EditStreaming events = %v (%v), want [image_edit.completed]", edits, err)
	}
	if seen := e.router.Seen.Load(); seen.Mode != "edit" || seen.RefCount != 1 {
		t.Errorf("streamed edit routed as %+v, want an edit with one reference", seen)
	}
}

// TestStreamErrorEvent: a request that fails after the stream has begun
// ends with an error event that the SDK reports as the stream's error,
// with routelab's code in it.
func TestStreamErrorEvent(t *testing.T) {
	e := mustStart(t, nil)
	fail := func(providers.Request) error {
		return &providers.Error{Provider: "fake", Kind: providers.KindContentPolicy, Status: 400, Message: "refused"}
	}
	e.fast.Fail, e.strong.Fail = fail, fail
	client := openai.NewClient(option.WithBaseURL(e.url+"/v1/"), option.WithAPIKey(e.key), option.WithMaxRetries(0))
	s := client.Images.GenerateStreaming(context.Background(), openai.ImageGenerateParams{Prompt: "a fox", Model: openai.ImageModel("auto")})
	for s.Next() {
		t.Errorf("event %s before the error", s.Current().Type)
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "content_policy") {
		t.Errorf("stream error = %v, want one naming content_policy", err)
	}
}

// TestStreamHeadersFirst: with a plain HTTP client reading the body as
// SSE, the event-stream headers arrive while the provider is still
// working (the client is not kept waiting for the whole outcome), and the
// body is well-formed events: "event: X" matches the data's type.
func TestStreamHeadersFirst(t *testing.T) {
	e := mustStart(t, nil)
	block := make(chan struct{})
	e.fast.Block = block
	req, err := http.NewRequest("POST", e.url+"/v1/images/generations",
		strings.NewReader(`{"prompt":"a lighthouse","stream":true,"partial_images":1,"size":"1024x1024","output_format":"jpeg"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req) // returns once the headers are in
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream answered %d %q before the image was made, want 200 text/event-stream", resp.StatusCode, ct)
	}
	close(block)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	var events []map[string]any
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var ev map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
				t.Fatalf("data of %s: %v", name, err)
			}
			if ev["type"] != name {
				t.Errorf("event %q carries type %v", name, ev["type"])
			}
			events = append(events, ev)
		}
	}
	if len(events) != 1 || events[0]["type"] != "image_generation.completed" || events[0]["output_format"] != "jpeg" {
		t.Fatalf("events = %v, want one jpeg image_generation.completed", events)
	}
	b, _ := base64.StdEncoding.DecodeString(events[0]["b64_json"].(string))
	if !bytes.HasPrefix(b, []byte{0xff, 0xd8}) {
		t.Errorf("completed image starts % x, want a JPEG", b[:4])
	}
}

func TestStreamValidation(t *testing.T) {
	e := mustStart(t, nil)
	tests := []struct {
		give, wantField string
	}{
		{`{"prompt":"x","stream":true,"partial_images":4}`, "partial_images"},
		{`{"prompt":"x","stream":true,"partial_images":-1}`, "partial_images"},
		{`{"prompt":"x","stream":true,"response_format":"url"}`, "response_format"},
	}
	for _, tt := range tests {
		r := e.post(t, "/v1/images/generations", tt.give)
		var body struct {
			Error struct{ Field string } `json:"error"`
		}
		_ = json.Unmarshal(r.body, &body)
		if r.status != 400 || body.Error.Field != tt.wantField {
			t.Errorf("POST %s = %d %s, want 400 on %s", tt.give, r.status, r.body, tt.wantField)
		}
	}
}

func types(evs []openai.ImageGenStreamEventUnion) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func pngSize(t *testing.T, b64 string) (int, int) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatal(errors.Join(errors.New("decode completed image"), err))
	}
	return cfg.Width, cfg.Height
}
