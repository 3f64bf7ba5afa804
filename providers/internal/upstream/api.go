package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpproxy"
)

// API is the HTTP client of a vendor's API calls, on fasthttp: the call
// runs in the caller's goroutine on a pooled keep-alive connection, into
// pooled request and response buffers. net/http's client handed every call
// to two goroutines of the connection (a writer and a reader) and back, and
// allocated its headers and body reader per call; on the serving path that
// was a third of the adapter's CPU. It speaks HTTP/1.1 (over TLS for
// https URLs), honours HTTP_PROXY, HTTPS_PROXY and NO_PROXY as net/http
// does, and does not follow redirects (vendor APIs answer in place).
type API struct{ c *fasthttp.Client }

// MaxConnsPerHost bounds the connections API opens to one vendor host;
// a call past it waits for one to free up (until its deadline). serve's
// provider gates keep the calls in flight well under it.
const MaxConnsPerHost = 1024

// NewAPI returns an API client; share one per process (its pools are per host).
func NewAPI() *API {
	return &API{c: &fasthttp.Client{
		Name:                "routelab",
		MaxConnsPerHost:     MaxConnsPerHost,
		MaxConnWaitTimeout:  time.Minute, // a call's own deadline cuts it shorter
		MaxIdleConnDuration: 30 * time.Second,
		MaxResponseBodySize: MaxBody,
		Dial:                fasthttpproxy.FasthttpProxyHTTPDialerTimeout(10 * time.Second),
		// Reads and writes are bounded per call by its context's deadline.
		DisablePathNormalizing: true,
	}}
}

var defaultAPI = NewAPI()

// DefaultAPI is the API client adapters use when their config names none.
func DefaultAPI() *API { return defaultAPI }

// Call is one request.
type Call struct {
	Method      string
	URL         string
	ContentType string
	Header      [][2]string // sent as given
	Body        []byte
}

// Response is a vendor's answer, valid until Release.
type Response struct{ r *fasthttp.Response }

// Status is the HTTP status code.
func (r Response) Status() int { return r.r.StatusCode() }

// Body is the whole body; it is reused after Release.
func (r Response) Body() []byte { return r.r.Body() }

// Header returns the named response header, "" when absent.
func (r Response) Header(name string) string { return string(r.r.Header.Peek(name)) }

// Headers copies the headers RetryAfter reads into an http.Header.
func (r Response) Headers() http.Header {
	h := http.Header{}
	for _, k := range []string{"Retry-After-Ms", "Retry-After"} {
		if v := r.Header(k); v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// Release returns the response's buffers to their pool.
func (r Response) Release() { fasthttp.ReleaseResponse(r.r) }

// Do sends c and reads the whole answer, within ctx's deadline. A context
// that is cancelled without a deadline ends the call only before it is
// sent: fasthttp has no cancellation mid-call (serve's request contexts
// carry their deadline). Failures come back as *providers.Error, as
// TransportError classifies them; a cancelled ctx as is.
func (a *API) Do(ctx context.Context, provider string, c Call) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, TransportError(ctx, provider, err)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(c.Method)
	req.SetRequestURI(c.URL)
	if c.ContentType != "" {
		req.Header.SetContentType(c.ContentType)
	}
	for _, kv := range c.Header {
		req.Header.Set(kv[0], kv[1])
	}
	req.SetBodyRaw(c.Body)
	resp := fasthttp.AcquireResponse()
	var err error
	if dl, ok := ctx.Deadline(); ok {
		err = a.c.DoDeadline(req, resp, dl)
	} else {
		err = a.c.Do(req, resp)
	}
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, fasthttp.ErrTLSHandshakeTimeout) {
			err = &timeoutError{err}
		}
		return Response{}, TransportError(ctx, provider, err)
	}
	return Response{r: resp}, nil
}

// timeoutError marks fasthttp's timeouts as net.Error timeouts, for
// TransportError.
type timeoutError struct{ err error }

func (e *timeoutError) Error() string   { return e.err.Error() }
func (e *timeoutError) Unwrap() error   { return e.err }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

var _ net.Error = (*timeoutError)(nil)
