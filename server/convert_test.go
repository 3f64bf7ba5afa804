package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
)

// TestOutputFormatConverted: the providers answer PNG whatever was asked
// (as Gemini and Ideogram do); the client gets the format it asked for,
// labelled as such, and output_compression sets the JPEG quality.
func TestOutputFormatConverted(t *testing.T) {
	e := mustStart(t, nil)
	tests := []struct {
		name, path, body string
		wantFormat       string
		wantDCQuant      int // first luminance quantiser of a JPEG: 16 scaled by the quality
	}{
		{"webp", "/v1/images", `{"prompt":"a red fox","size":"256x256","output_format":"webp"}`, qa.FormatWebP, 0},
		{"jpeg default quality 90", "/v1/images", `{"prompt":"a red fox","size":"256x256","output_format":"jpeg"}`, qa.FormatJPEG, 3},
		{"jpeg output_compression 20", "/v1/images", `{"prompt":"a red fox","size":"256x256","output_format":"jpeg","output_compression":20}`, qa.FormatJPEG, 40},
		{"openai webp", "/v1/images/generations", `{"prompt":"a red fox","size":"256x256","output_format":"webp"}`, qa.FormatWebP, 0},
		{"png stays png", "/v1/images", `{"prompt":"a red fox","size":"256x256","output_format":"png"}`, qa.FormatPNG, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, tt.path, tt.body)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var body struct {
				OutputFormat string `json:"output_format"`
				Images       []struct {
					B64  string `json:"b64_json"`
					MIME string `json:"mime_type"`
				} `json:"images"`
				Data []struct {
					B64 string `json:"b64_json"`
				} `json:"data"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			b64, mime := "", ""
			if len(body.Images) == 1 {
				b64, mime = body.Images[0].B64, body.Images[0].MIME
			} else if len(body.Data) == 1 {
				b64, mime = body.Data[0].B64, "image/"+body.OutputFormat
			}
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			if got := qa.Sniff(raw); got != tt.wantFormat || mime != "image/"+tt.wantFormat {
				t.Fatalf("bytes are %q labelled %q, want %s", got, mime, tt.wantFormat)
			}
			if _, _, err := qa.Decode(raw, 1<<20); err != nil {
				t.Fatalf("the %s does not decode: %v", tt.wantFormat, err)
			}
			if tt.wantDCQuant > 0 {
				if q := dcQuant(raw); q != tt.wantDCQuant {
					t.Errorf("JPEG DC quantiser = %d, want %d", q, tt.wantDCQuant)
				}
			}
		})
	}
	if r := e.post(t, "/v1/images", `{"prompt":"a red fox","output_format":"jpeg","output_compression":101}`); r.status != 400 || r.errorCode() != "invalid_field" {
		t.Errorf("output_compression 101: status %d code %q, want 400 invalid_field", r.status, r.errorCode())
	}
}

// dcQuant returns the first value of a JPEG's first quantisation table
// (the DC quantiser), or -1.
func dcQuant(b []byte) int {
	i := bytes.Index(b, []byte{0xff, 0xdb})
	if i < 0 || i+5 >= len(b) {
		return -1
	}
	return int(b[i+5])
}

// nativeSize answers every request with a w×h PNG of a diagonal
// gradient, as a vendor that generates at its own native sizes does.
type nativeSize struct{ w, h int }

func (p nativeSize) Name() string { return "native" }

func (p nativeSize) Generate(context.Context, providers.Request) (providers.Result, error) {
	img := image.NewGray(image.Rect(0, 0, p.w, p.h))
	for y := range p.h {
		for x := range p.w {
			img.Pix[y*img.Stride+x] = uint8(x + y)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return providers.Result{}, err
	}
	return providers.Result{Images: []providers.Image{{Bytes: buf.Bytes(), MIME: "image/png"}}}, nil
}

// TestDeliveredAtTheRequestedSize: a vendor's native 1248x832 answer to a
// 1536x1024 request is delivered at 1536x1024; a square answer to it is
// centre-cropped to 3:2 and delivered at 1536x1024 too.
func TestDeliveredAtTheRequestedSize(t *testing.T) {
	for _, native := range []nativeSize{{1248, 832}, {1024, 1024}} {
		e := mustStart(t, func(s *setup) {
			s.gwDeps.Providers = map[string]providers.Provider{"fast": native, "strong": native}
		})
		r := e.post(t, "/v1/images", `{"prompt":"a wide valley","size":"1536x1024","output_format":"png"}`)
		n := decodeNative(t, r)
		raw, err := base64.StdEncoding.DecodeString(n.Images[0].B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(raw))
		if err != nil || cfg.Width != 1536 || cfg.Height != 1024 {
			t.Errorf("%dx%d answer delivered at %dx%d (%v), want 1536x1024", native.w, native.h, cfg.Width, cfg.Height, err)
		}
	}
}

// TestFitPolicies: a square vendor answer to a 3:2 request, by fit: crop
// fills 1536x1024 (the corner is image), pad keeps the whole square inside
// transparent side bars (white in JPEG), native delivers the vendor's
// 1024x1024 and says so.
func TestFitPolicies(t *testing.T) {
	e := mustStart(t, func(s *setup) {
		sq := nativeSize{1024, 1024}
		s.gwDeps.Providers = map[string]providers.Provider{"fast": sq, "strong": sq}
	})
	tests := []struct {
		fit, format  string
		wantW, wantH int
		wantCorner   color.NRGBA // pixel (0,0)
	}{
		{"crop", "png", 1536, 1024, color.NRGBA{A: 255}},
		{"pad", "png", 1536, 1024, color.NRGBA{}},
		{"pad", "jpeg", 1536, 1024, color.NRGBA{255, 255, 255, 255}},
		{"native", "png", 1024, 1024, color.NRGBA{A: 255}},
	}
	for _, tt := range tests {
		r := e.post(t, "/v1/images", `{"prompt":"a wide valley","size":"1536x1024","fit":"`+tt.fit+`","output_format":"`+tt.format+`"}`)
		n := decodeNative(t, r)
		raw, err := base64.StdEncoding.DecodeString(n.Images[0].B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := image.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("fit %s: %v", tt.fit, err)
		}
		b := img.Bounds()
		if b.Dx() != tt.wantW || b.Dy() != tt.wantH || n.Images[0].Width != tt.wantW || n.Images[0].Height != tt.wantH {
			t.Errorf("fit %s: image %dx%d, reported %dx%d, want %dx%d", tt.fit, b.Dx(), b.Dy(), n.Images[0].Width, n.Images[0].Height, tt.wantW, tt.wantH)
		}
		c := color.NRGBAModel.Convert(img.At(0, 0)).(color.NRGBA)
		if c.A != tt.wantCorner.A || (tt.wantCorner.R == 255 && c.R < 250) {
			t.Errorf("fit %s %s: corner pixel %v, want like %v", tt.fit, tt.format, c, tt.wantCorner)
		}
	}
	if r := e.post(t, "/v1/images", `{"prompt":"x","fit":"stretch"}`); r.status != 400 || !strings.Contains(string(r.body), `"fit"`) {
		t.Errorf("fit stretch = %d %s, want 400 on fit", r.status, r.body)
	}
}
