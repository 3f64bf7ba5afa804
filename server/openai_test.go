package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image/png"
	"io"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestOpenAISDK drives routelab with the official OpenAI Go SDK, unchanged
// but for the base URL and key: model "auto" routes, a catalog name pins.
func TestOpenAISDK(t *testing.T) {
	e := mustStart(t, nil)
	client := openai.NewClient(option.WithBaseURL(e.url+"/v1/"), option.WithAPIKey(e.key), option.WithMaxRetries(0))
	ctx := context.Background()

	gen, err := client.Images.Generate(ctx, openai.ImageGenerateParams{
		Prompt:         "a red fox in snow",
		Model:          openai.ImageModel("auto"),
		N:              openai.Int(2),
		Size:           openai.ImageGenerateParamsSize1024x1024,
		ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON,
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if gen.Created == 0 || len(gen.Data) != 2 {
		t.Fatalf("Generate = created %d, %d images, want 2", gen.Created, len(gen.Data))
	}
	for i, d := range gen.Data {
		b, err := base64.StdEncoding.DecodeString(d.B64JSON)
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 1024 {
			t.Errorf("image %d: %v, bounds %v", i, err, img.Bounds())
		}
	}

	edit, err := client.Images.Edit(ctx, openai.ImageEditParams{
		Image:  openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(pngBytes(t, 64, 64)), "cat.png", "image/png")},
		Prompt: "give the cat a hat",
		Model:  openai.ImageModel("auto"),
		Size:   openai.ImageEditParamsSize1024x1024,
	})
	if err != nil {
		t.Fatalf("Edit: %v", err)
	}
	if len(edit.Data) != 1 || len(edit.Data[0].B64JSON) < 100 {
		t.Fatalf("Edit = %+v", edit)
	}
	seen := e.router.Seen.Load()
	if seen.Mode != "edit" || seen.RefCount != 1 || seen.Pin != "" {
		t.Errorf("edit routed as %+v, want an unpinned edit with one reference", seen)
	}

	// Several images, as OpenAI's image[] array, and a pin.
	_, err = client.Images.Edit(ctx, openai.ImageEditParams{
		Image: openai.ImageEditParamsImageUnion{OfFileArray: []io.Reader{
			openai.File(bytes.NewReader(pngBytes(t, 32, 32)), "a.png", "image/png"),
			openai.File(bytes.NewReader(pngBytes(t, 48, 32)), "b.png", "image/png"),
		}},
		Prompt: "merge them",
		Model:  openai.ImageModel("strong"),
	})
	if err != nil {
		t.Fatalf("Edit with two images: %v", err)
	}
	if seen := e.router.Seen.Load(); seen.RefCount != 2 || seen.Pin != "strong" {
		t.Errorf("edit routed as %+v, want two references pinned to strong", seen)
	}

	// Errors surface as *openai.Error with our code.
	_, err = client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "", Model: openai.ImageModel("auto")})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "prompt_empty" {
		t.Errorf("empty prompt: %v, want a 400 *openai.Error with code prompt_empty", err)
	}
	bad := openai.NewClient(option.WithBaseURL(e.url+"/v1/"), option.WithAPIKey("nope"), option.WithMaxRetries(0))
	_, err = bad.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "x", Model: openai.ImageModel("auto")})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Errorf("bad key: %v, want 401", err)
	}
}
