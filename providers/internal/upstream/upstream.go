// Package upstream holds what the vendor adapters share: turning HTTP
// statuses, headers and transport failures into *providers.Error, bounded
// body reads, and multipart and size helpers.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	// AVX2/NEON base64, drop-in for encoding/base64 (same results, the
	// same errors past its vector loop): decoding the image is the largest
	// CPU cost of reading a vendor's answer.
	"github.com/segmentio/asm/base64"

	"github.com/routelab/routelab/providers"
)

// MaxBody bounds a vendor response body: a handful of base64 images.
const MaxBody = 64 << 20

// MaxImage bounds an image fetched from a vendor URL.
const MaxImage = 32 << 20

// MaxIdlePerHost is how many idle keep-alive connections Client keeps per
// vendor host. net/http's default of 2 closes every connection past the
// second as soon as it goes idle, so under concurrent load nearly every
// call dialed a new connection (and the vendor accepted one): HTTP/1.1
// carries one call at a time per connection, so the pool should hold about
// as many connections as calls in flight to one host (serve's
// --limit-provider-concurrency, 64 by default).
const MaxIdlePerHost = 256

var defaultClient = &http.Client{Transport: newTransport()}

// Client is the HTTP client vendor adapters use when their config names
// none: net/http's default transport (proxy from the environment, HTTP/2
// over TLS, its timeouts) with a connection pool sized for concurrent
// calls (MaxIdlePerHost). The request context bounds every call.
func Client() *http.Client { return defaultClient }

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * MaxIdlePerHost
	t.MaxIdleConnsPerHost = MaxIdlePerHost
	return t
}

// KindForStatus classifies an HTTP status from an image API.
func KindForStatus(status int) providers.ErrorKind {
	switch {
	case status == http.StatusTooManyRequests:
		return providers.KindRateLimited
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return providers.KindAuth
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		return providers.KindTimeout
	case status >= 500:
		return providers.KindUnavailable
	}
	return providers.KindBadRequest
}

// RetryAfter reads how long the upstream asks us to wait: retry-after-ms
// (OpenAI), then Retry-After in seconds or as an HTTP date. 0 when absent.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return max(time.Duration(s*float64(time.Second)), 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// TransportError classifies a failure to get a response at all: the
// request's deadline or a network timeout is KindTimeout, anything else
// (refused, reset, DNS) KindUnavailable. A cancelled ctx is returned as is.
func TransportError(ctx context.Context, provider string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &providers.Error{Provider: provider, Kind: providers.KindTimeout, Status: http.StatusGatewayTimeout, Message: err.Error()}
	}
	return &providers.Error{Provider: provider, Kind: providers.KindUnavailable, Status: http.StatusBadGateway, Message: err.Error()}
}

// ReadBody reads at most limit bytes of resp's body and closes it. A body
// whose length the response declares is read into one buffer of that size
// (io.ReadAll grew its buffer from 512 bytes, copying the image each time).
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if n := resp.ContentLength; n >= 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response body over %d bytes", limit)
	}
	return b, nil
}

// Do sends req with client and reads the body. Transport and body-read
// failures come back as *providers.Error (see TransportError).
func Do(ctx context.Context, client *http.Client, provider string, req *http.Request) (*http.Response, []byte, error) {
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return nil, nil, TransportError(ctx, provider, err)
	}
	body, err := ReadBody(resp, MaxBody)
	if err != nil {
		return nil, nil, TransportError(ctx, provider, err)
	}
	return resp, body, nil
}

// Fetch downloads an image a vendor returned by URL (http or https only),
// without credentials, at most MaxImage bytes.
func Fetch(ctx context.Context, client *http.Client, provider, url string) ([]byte, error) {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, &providers.Error{Provider: provider, Kind: providers.KindUnavailable, Status: http.StatusBadGateway, Message: "image url is not http(s)"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &providers.Error{Provider: provider, Kind: providers.KindUnavailable, Status: http.StatusBadGateway, Message: err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, TransportError(ctx, provider, err)
	}
	b, err := ReadBody(resp, MaxImage)
	if err != nil {
		return nil, TransportError(ctx, provider, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &providers.Error{Provider: provider, Kind: providers.KindUnavailable, Status: resp.StatusCode,
			Message: fmt.Sprintf("fetch image: status %d", resp.StatusCode)}
	}
	return b, nil
}

// Form builds a multipart/form-data body.
type Form struct {
	buf bytes.Buffer
	w   *multipart.Writer
	err error
}

// NewForm starts a form.
func NewForm() *Form {
	f := &Form{}
	f.w = multipart.NewWriter(&f.buf)
	return f
}

// Field adds a text field.
func (f *Form) Field(name, value string) {
	if f.err == nil {
		f.err = f.w.WriteField(name, value)
	}
}

// File adds a file part with its content type.
func (f *Form) File(field, filename, contentType string, data []byte) {
	if f.err != nil {
		return
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, filename))
	h.Set("Content-Type", contentType)
	w, err := f.w.CreatePart(h)
	if err == nil {
		_, err = w.Write(data)
	}
	f.err = err
}

// Close ends the form and returns its body and content type.
func (f *Form) Close() (*bytes.Buffer, string, error) {
	if f.err == nil {
		f.err = f.w.Close()
	}
	return &f.buf, f.w.FormDataContentType(), f.err
}

// Aspect returns the ratio in choices ("W:H" or "WxH") nearest to w/h
// (in log space); fallback when w or h is 0.
func Aspect(w, h int, choices []string, fallback string) string {
	if w <= 0 || h <= 0 {
		return fallback
	}
	want := float64(w) / float64(h)
	best, bestD := fallback, 1e9
	for _, c := range choices {
		a, b, ok := strings.Cut(strings.ReplaceAll(c, "x", ":"), ":")
		if !ok {
			continue
		}
		x, err1 := strconv.ParseFloat(a, 64)
		y, err2 := strconv.ParseFloat(b, 64)
		if err1 != nil || err2 != nil || y == 0 {
			continue
		}
		d := want / (x / y)
		if d < 1 {
			d = 1 / d
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// DecodeImage decodes an image a vendor sent in standard base64. The text is
// kept as Image.Base64 only when it is exactly the canonical encoding's
// length: base64 with line breaks or other whitespace decodes too, but must
// not be copied into a JSON string.
func DecodeImage(s string) (providers.Image, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return providers.Image{}, err
	}
	im := providers.Image{Bytes: b, MIME: MIME(b)}
	if len(s) == base64.StdEncoding.EncodedLen(len(b)) {
		im.Base64 = s
	}
	return im, nil
}

// DecodeImageJSON decodes an image from a JSON string as Scanner.String
// read it: raw text (no escapes) is decoded straight from the body;
// unescaped text goes through DecodeImage. Raw text is not kept as
// Image.Base64: it lives in a pooled response buffer, and copying it out
// (a fresh allocation as large as the base64) cost more than encoding the
// bytes again into the pooled response buffer does (BenchmarkPassThrough,
// decode included: 19.9 against 9.5 us and 14 against 6 kB for the peer
// bench's 5.6 kB PNG; 1.57 against 0.83 ms and 2.3 against 1.0 MB for 1 MB).
func DecodeImageJSON(v []byte, raw bool) (providers.Image, error) {
	if !raw {
		return DecodeImage(string(v))
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
	n, err := base64.StdEncoding.Decode(b, v)
	if err != nil {
		return providers.Image{}, err
	}
	b = b[:n]
	return providers.Image{Bytes: b, MIME: MIME(b)}, nil
}

// MIME names the content type of image bytes by their magic bytes.
func MIME(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return "image/jpeg"
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return "image/webp"
	}
	return "application/octet-stream"
}

// Truncate shortens an upstream message for error strings.
func Truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Defaults fills the connection settings every adapter's Config has: the
// base URL (def when empty, no trailing slash), the shared HTTP client,
// the clock.
func Defaults(baseURL *string, def string, client **http.Client, now *func() time.Time) {
	if *baseURL == "" {
		*baseURL = def
	}
	*baseURL = strings.TrimRight(*baseURL, "/")
	if *client == nil {
		*client = Client()
	}
	if *now == nil {
		*now = time.Now
	}
}

// Sleep waits d or until ctx ends (then its error); d <= 0 returns at once.
// Adapters and the retry loop take it as their default sleeper, which tests
// replace.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
