package server_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/routelab/routelab/server"
)

// bombPNG is a valid PNG header claiming w x h pixels with no pixel data:
// the pixel limit must refuse it before anything is decoded.
func bombPNG(w, h uint32) []byte { return headerPNG(w, h, 8) }

// headerPNG is a valid RGBA PNG header of the given bit depth with no
// pixel data.
func headerPNG(w, h uint32, depth byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = depth, 6 // RGBA
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

func TestBadInput(t *testing.T) {
	e := mustStart(t, nil)
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	okRef := b64(pngBytes(t, 32, 32))
	tests := []struct {
		name      string
		give      string
		wantCode  string
		wantHTTP  int
		wantField string
	}{
		{"broken JSON", `{"prompt":`, "invalid_json", 400, ""},
		{"empty body", ``, "invalid_json", 400, ""},
		{"not an object", `[1,2]`, "invalid_json", 400, ""},
		{"wrong type", `{"prompt":5}`, "invalid_json", 400, "prompt"},
		{"empty prompt", `{"prompt":""}`, "prompt_empty", 400, "prompt"},
		{"blank prompt", `{"prompt":"   "}`, "prompt_empty", 400, "prompt"},
		{"overlong prompt", `{"prompt":"` + strings.Repeat("a", 4001) + `"}`, "prompt_too_long", 400, "prompt"},
		{"n zero is one", `{"prompt":"cat","n":-1}`, "invalid_n", 400, "n"},
		{"n too large", `{"prompt":"cat","n":1000}`, "invalid_n", 400, "n"},
		{"n not a number", `{"prompt":"cat","n":"many"}`, "invalid_json", 400, "n"},
		{"unknown mode", `{"prompt":"cat","mode":"teleport"}`, "invalid_mode", 400, "mode"},
		{"bad size", `{"prompt":"cat","size":"big"}`, "invalid_size", 400, "size"},
		{"size too small", `{"prompt":"cat","size":"10x10"}`, "invalid_size", 400, "size"},
		{"size too large", `{"prompt":"cat","size":"99999x2"}`, "invalid_size", 400, "size"},
		{"bad aspect", `{"prompt":"cat","aspect_ratio":"wide"}`, "invalid_size", 400, "aspect_ratio"},
		{"bad quality", `{"prompt":"cat","quality":"ultra"}`, "invalid_quality", 400, "quality"},
		{"bad output format", `{"prompt":"cat","output_format":"gif"}`, "invalid_output_format", 400, "output_format"},
		{"bad response format", `{"prompt":"cat","response_format":"fax"}`, "invalid_response_format", 400, "response_format"},
		{"unknown model", `{"prompt":"cat","model":"dall-e-9"}`, "unknown_model", 400, "model"},
		{"negative budget", `{"prompt":"cat","constraints":{"max_cost_usd":-1}}`, "invalid_field", 400, "constraints"},
		{"edit without image", `{"prompt":"cat","mode":"edit"}`, "edit_requires_image", 400, "references"},
		{"reference not an image", `{"prompt":"cat","mode":"edit","references":[{"b64_json":"aGVsbG8gd29ybGQ="}]}`, "reference_unsupported_format", 400, "references[0]"},
		{"reference bad base64", `{"prompt":"cat","mode":"edit","references":["!!!notbase64"]}`, "reference_invalid_base64", 400, "references[0]"},
		{"reference bad object", `{"prompt":"cat","mode":"edit","references":[{"nothing":1}]}`, "invalid_json", 400, "references"},
		{"reference truncated PNG", `{"prompt":"cat","mode":"edit","references":["` + b64(pngBytes(t, 32, 32)[:40]) + `"]}`, "reference_unsupported_format", 400, "references[0]"},
		{"decompression bomb", `{"prompt":"cat","mode":"edit","references":["` + b64(bombPNG(100000, 100000)) + `"]}`, "reference_too_many_pixels", 400, "references[0]"},
		// 36 MP is within the pixel cap, but 288 MB decoded at 16 bits: over
		// the per-request decode budget, refused from the header
		{"decode budget", `{"prompt":"cat","mode":"edit","references":["` + b64(headerPNG(6000, 6000, 16)) + `"]}`, "reference_too_large", 413, "references[0]"},
		{"too many references", `{"prompt":"cat","references":[` + strings.TrimSuffix(strings.Repeat(`"`+okRef+`",`, 9), ",") + `]}`, "too_many_references", 400, "references"},
		{"reference too large", `{"prompt":"cat","references":["` + strings.Repeat("A", 2<<20) + `"]}`, "reference_too_large", 413, "references[0]"},
		{"reference URL scheme", `{"prompt":"cat","references":["ftp://example.com/a.png"]}`, "reference_invalid_base64", 400, "references[0]"},
		{"reference URL loopback", `{"prompt":"cat","references":["http://127.0.0.1:1/a.png"]}`, "reference_url_forbidden", 400, "references[0]"},
		{"reference URL metadata", `{"prompt":"cat","references":[{"url":"http://169.254.169.254/latest/meta-data"}]}`, "reference_url_forbidden", 400, "references[0]"},
		{"reference URL private", `{"prompt":"cat","references":[{"url":"http://10.1.2.3/a.png"}]}`, "reference_url_forbidden", 400, "references[0]"},
		{"unknown parent", `{"prompt":"cat","parent_id":"req_nope"}`, "parent_not_found", 400, "parent_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, "/v1/images", tt.give)
			if r.status != tt.wantHTTP || r.errorCode() != tt.wantCode {
				t.Errorf("POST %.60s = %d %s, want %d %s: %.300s", tt.give, r.status, r.errorCode(), tt.wantHTTP, tt.wantCode, r.body)
			}
			if !strings.Contains(string(r.body), fmt.Sprintf(`"field":%q`, tt.wantField)) && tt.wantField != "" {
				t.Errorf("field: body %.300s, want field %q", r.body, tt.wantField)
			}
		})
	}
	if got := e.fast.Calls.Load() + e.strong.Calls.Load(); got != 0 {
		t.Errorf("provider calls = %d after only bad input, want 0", got)
	}
}

func TestBadTransport(t *testing.T) {
	e := mustStart(t, nil)
	auth := "Bearer " + e.key
	tests := []struct {
		name     string
		path     string
		header   map[string]string
		body     []byte
		wantHTTP int
		wantCode string
	}{
		{"no content type", "/v1/images", map[string]string{"Authorization": auth}, []byte(`{"prompt":"x"}`), 415, "unsupported_media_type"},
		{"form encoded", "/v1/images", map[string]string{"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}, []byte(`prompt=x`), 415, "unsupported_media_type"},
		{"text plain", "/v1/images/generations", map[string]string{"Authorization": auth, "Content-Type": "text/plain"}, []byte(`{"prompt":"x"}`), 415, "unsupported_media_type"},
		{"edits as JSON", "/v1/images/edits", map[string]string{"Authorization": auth, "Content-Type": "application/json"}, []byte(`{"prompt":"x"}`), 415, "unsupported_media_type"},
		{"body too large", "/v1/images", map[string]string{"Authorization": auth, "Content-Type": "application/json"}, bytes.Repeat([]byte("a"), 5<<20), 413, "body_too_large"},
		{"broken multipart", "/v1/images", map[string]string{"Authorization": auth, "Content-Type": "multipart/form-data; boundary=xyz"}, []byte("--xyz\r\ngarbage"), 400, "invalid_multipart"},
		{"multipart without boundary", "/v1/images/edits", map[string]string{"Authorization": auth, "Content-Type": "multipart/form-data"}, []byte("x"), 400, "invalid_multipart"},
		{"unknown route", "/v1/nothing", map[string]string{"Authorization": auth}, nil, 404, "not_found"},
		{"feedback bad signal", "/v1/feedback", map[string]string{"Authorization": auth, "Content-Type": "application/json"}, []byte(`{"request_id":"r","signal":"meh"}`), 400, "invalid_signal"},
		{"feedback no request", "/v1/feedback", map[string]string{"Authorization": auth, "Content-Type": "application/json"}, []byte(`{"signal":"thumbs_up"}`), 400, "invalid_field"},
		{"feedback broken JSON", "/v1/feedback", map[string]string{"Authorization": auth, "Content-Type": "application/json"}, []byte(`{`), 400, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", e.url+tt.path, tt.header, bytes.NewReader(tt.body))
			if r.status != tt.wantHTTP || r.errorCode() != tt.wantCode {
				t.Errorf("POST %s = %d %s, want %d %s: %.200s", tt.path, r.status, r.errorCode(), tt.wantHTTP, tt.wantCode, r.body)
			}
		})
	}
}

func TestBadMultipart(t *testing.T) {
	e := mustStart(t, nil)
	form := func(fields map[string]string, files map[string][]byte) (*bytes.Buffer, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for k, v := range fields {
			_ = w.WriteField(k, v)
		}
		for k, v := range files {
			f, _ := w.CreateFormFile(k, "x.png")
			f.Write(v)
		}
		w.Close()
		return &b, w.FormDataContentType()
	}
	tests := []struct {
		name     string
		path     string
		fields   map[string]string
		files    map[string][]byte
		wantHTTP int
		wantCode string
	}{
		{"edit without image", "/v1/images/edits", map[string]string{"prompt": "x"}, nil, 400, "edit_requires_image"},
		{"edit text file", "/v1/images/edits", map[string]string{"prompt": "x"}, map[string][]byte{"image": []byte("hello")}, 400, "reference_unsupported_format"},
		{"edit bomb", "/v1/images/edits", map[string]string{"prompt": "x"}, map[string][]byte{"image": bombPNG(50000, 50000)}, 400, "reference_too_many_pixels"},
		{"edit mask not PNG", "/v1/images/edits", map[string]string{"prompt": "x"}, map[string][]byte{"image": pngBytes(t, 8, 8), "mask": []byte("nope")}, 400, "reference_unsupported_format"},
		{"edit empty prompt", "/v1/images/edits", map[string]string{"prompt": ""}, map[string][]byte{"image": pngBytes(t, 8, 8)}, 400, "prompt_empty"},
		{"native n not int", "/v1/images", map[string]string{"prompt": "x", "n": "two"}, nil, 400, "invalid_n"},
		{"native bad constraints", "/v1/images", map[string]string{"prompt": "x", "constraints": "{"}, nil, 400, "invalid_json"},
		{"native upload too large", "/v1/images", map[string]string{"prompt": "x"}, map[string][]byte{"references": bytes.Repeat([]byte{0x89}, 2<<20)}, 413, "reference_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := form(tt.fields, tt.files)
			r := do(t, "POST", e.url+tt.path, map[string]string{"Authorization": "Bearer " + e.key, "Content-Type": ct}, body)
			if r.status != tt.wantHTTP || r.errorCode() != tt.wantCode {
				t.Errorf("POST %s = %d %s, want %d %s: %.200s", tt.path, r.status, r.errorCode(), tt.wantHTTP, tt.wantCode, r.body)
			}
		})
	}
}

func TestCatalogSizes(t *testing.T) {
	e := mustStart(t, func(s *setup) {
		s.deps.Catalog = []server.Model{{Name: "fast", Sizes: []string{"1024x1024", "1536x1024"}}, {Name: "strong", Sizes: []string{"1024x1536"}}}
	})
	tests := []struct {
		give       string
		wantStatus int
		wantSize   string
	}{
		{`{"prompt":"x","size":"512x512"}`, 400, ""},
		{`{"prompt":"x","size":"1024x1536"}`, 200, "1024x1536"},
		{`{"prompt":"x"}`, 200, "1024x1024"},
		{`{"prompt":"x","aspect_ratio":"16:9"}`, 200, "1536x1024"},
		{`{"prompt":"x","aspect_ratio":"9:16","size":"auto"}`, 200, "1024x1536"},
	}
	for _, tt := range tests {
		r := e.post(t, "/v1/images", tt.give)
		if r.status != tt.wantStatus {
			t.Errorf("POST %s = %d, want %d: %s", tt.give, r.status, tt.wantStatus, r.body)
			continue
		}
		if tt.wantStatus != 200 {
			if r.errorCode() != "invalid_size" {
				t.Errorf("POST %s code = %s, want invalid_size", tt.give, r.errorCode())
			}
			continue
		}
		seen := e.router.Seen.Load()
		if got := fmt.Sprintf("%dx%d", seen.Width, seen.Height); got != tt.wantSize {
			t.Errorf("POST %s routed at %s, want %s", tt.give, got, tt.wantSize)
		}
	}
}

// A request whose headers do not parse gets 400 invalid_request without the
// raw request (and so the API key) copied into the body.
func TestMalformedHeadersNotEchoed(t *testing.T) {
	e := mustStart(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// An API key pasted with its JSON around it: the next line is not a header.
	raw := "POST /v1/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer rl_do_not_echo\r\n  \"secret\": 1\r\nContent-Length: 2\r\n\r\n{}"
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"code":"invalid_request"`) {
		t.Fatalf("= %d %s, want 400 invalid_request", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "rl_do_not_echo") {
		t.Errorf("the error body echoes the request headers: %s", body)
	}
}
