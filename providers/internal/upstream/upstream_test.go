package upstream_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/internal/upstream"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		give map[string]string
		want time.Duration
	}{
		{nil, 0},
		{map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "Wed, 25 Nov 2026 12:00:07 GMT"}, 7 * time.Second},
		{map[string]string{"Retry-After": "Wed, 25 Nov 2026 11:00:00 GMT"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "1"}, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.give {
			h.Set(k, v)
		}
		if got := upstream.RetryAfter(h, now); got != tt.want {
			t.Errorf("RetryAfter(%v) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestKindForStatus(t *testing.T) {
	tests := []struct {
		give int
		want providers.ErrorKind
	}{
		{400, providers.KindBadRequest}, {401, providers.KindAuth}, {403, providers.KindAuth},
		{404, providers.KindBadRequest}, {408, providers.KindTimeout}, {413, providers.KindBadRequest},
		{429, providers.KindRateLimited}, {500, providers.KindUnavailable}, {502, providers.KindUnavailable},
		{503, providers.KindUnavailable}, {504, providers.KindTimeout},
	}
	for _, tt := range tests {
		if got := upstream.KindForStatus(tt.give); got != tt.want {
			t.Errorf("KindForStatus(%d) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestAspect(t *testing.T) {
	choices := []string{"1:1", "3:2", "2:3", "16:9", "9:16"}
	tests := []struct {
		w, h int
		want string
	}{
		{1024, 1024, "1:1"}, {1536, 1024, "3:2"}, {1024, 1536, "2:3"}, {1920, 1080, "16:9"},
		{1080, 1920, "9:16"}, {1100, 1000, "1:1"}, {0, 0, "1:1"},
	}
	for _, tt := range tests {
		if got := upstream.Aspect(tt.w, tt.h, choices, "1:1"); got != tt.want {
			t.Errorf("Aspect(%d, %d) = %s, want %s", tt.w, tt.h, got, tt.want)
		}
	}
	if got := upstream.Aspect(1536, 1024, []string{"1x1", "3x2"}, "1x1"); got != "3x2" {
		t.Errorf("Aspect with WxH choices = %s, want 3x2", got)
	}
}

func TestDecodeImage(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n0123456789a") // 19 bytes: padded
	canonical := base64.StdEncoding.EncodeToString(png)
	for _, tc := range []struct {
		name, in   string
		wantErr    bool
		wantBase64 string // kept for pass-through
	}{
		{"canonical is kept", canonical, false, canonical},
		{"with a line break decodes but is not kept", canonical[:8] + "\n" + canonical[8:], false, ""},
		{"not base64", "%%%%", true, ""},
		{"unpadded", strings.TrimRight(canonical, "="), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := upstream.DecodeImage(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(im.Bytes, png) || im.MIME != "image/png" || im.Base64 != tc.wantBase64 {
				t.Errorf("DecodeImage = %q %s base64 %q; want the PNG, image/png, base64 %q", im.Bytes, im.MIME, im.Base64, tc.wantBase64)
			}
		})
	}
}
