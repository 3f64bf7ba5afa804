// Package providers holds one adapter per upstream image model API (sim,
// openai, gemini, ideogram) behind one small interface, plus the resilience
// that wraps them (retries inside the deadline, a circuit breaker per
// provider).
package providers

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"
)

// Request is one call to a model: what to draw, at which size.
type Request struct {
	RequestID    string
	Model        string // catalog model name
	Mode         string // generate | edit
	Prompt       string
	References   [][]byte // normalised PNG/JPEG bytes; the first is the image to edit
	Mask         []byte
	Width        int
	Height       int
	N            int
	Quality      string // draft | standard | premium
	OutputFormat string // png | jpeg | webp
	// OutputCompression is the JPEG or WebP quality asked for (0-100),
	// forwarded to vendors that take it; nil: none asked.
	OutputCompression *int
	EditDepth         int
	Seed              uint64
	// OpenAI Images options, forwarded by adapters whose API has them and
	// ignored by the rest: Background transparent|opaque|auto, Moderation
	// auto|low, InputFidelity high|low (edits), Style vivid|natural
	// (dall-e-3), User (the end user, for the vendor's abuse monitoring).
	Background, Moderation, InputFidelity, Style, User string
	// Attempt counts the calls made for this request to this model: 0 for the
	// first, then 1, 2 ... for retries (set by the retrier), so that a
	// simulated retry draws a fresh outcome.
	Attempt int
}

// Image is one returned image.
type Image struct {
	Bytes []byte
	MIME  string
	// Decoded is the image Bytes losslessly encode, when the provider drew
	// it in this process (the simulator's fresh PNG renders): automated QA
	// may measure it instead of decoding Bytes again. Adapters of remote
	// APIs never set it; their bytes are always decoded. Read only.
	Decoded image.Image
	// Digest is a 64-bit hash of Bytes the provider computed when it made
	// them (the simulator, once per cached render): caches keyed by content,
	// like automated QA's, may use it instead of hashing Bytes again. Zero
	// when the provider has none; then Bytes are hashed.
	Digest uint64
	// Compressed: the vendor encoded Bytes at the request's
	// OutputCompression (it was told), so they need no encoding again.
	Compressed bool
	// Base64 is Bytes in standard base64 with padding, as the vendor sent
	// them (OpenAI's b64_json, Gemini's inline data) or as the simulator
	// keeps them with a cached render: a b64_json response passes it through
	// instead of encoding the image again. Empty when there is none; whoever
	// changes Bytes must clear it.
	Base64 string
}

// Result is a successful call.
type Result struct {
	Images  []Image
	CostUSD float64
	// CostSource says where CostUSD comes from: CostUsage when the vendor
	// reported token usage and the model has token prices, else
	// CostCatalog (the catalog's price per image).
	CostSource string
	Usage      *Usage // the vendor's token usage, when it reports one
	Latency    time.Duration
}

// Cost sources of a Result.
const (
	CostUsage   = "usage"
	CostCatalog = "catalog"
)

// Usage is a vendor's token count for one call (OpenAI's GPT image models).
type Usage struct {
	InputTextTokens   int64
	InputImageTokens  int64
	OutputImageTokens int64
	OutputTextTokens  int64
}

// TokenPrices are USD per million tokens of each kind.
type TokenPrices struct {
	TextInput   float64 `json:"text_input"`
	ImageInput  float64 `json:"image_input"`
	ImageOutput float64 `json:"image_output"`
	TextOutput  float64 `json:"text_output,omitempty"`
}

// Cost is what u costs at p.
func (p TokenPrices) Cost(u Usage) float64 {
	return (float64(u.InputTextTokens)*p.TextInput + float64(u.InputImageTokens)*p.ImageInput +
		float64(u.OutputImageTokens)*p.ImageOutput + float64(u.OutputTextTokens)*p.TextOutput) / 1e6
}

// Provider calls one upstream. Generate returns *Error for upstream failures
// so callers can tell retryable from final ones.
type Provider interface {
	Name() string
	Generate(ctx context.Context, req Request) (Result, error)
}

// ErrorKind classifies upstream failures.
type ErrorKind string

const (
	KindRateLimited   ErrorKind = "rate_limited"   // 429; retry after RetryAfter
	KindUnavailable   ErrorKind = "unavailable"    // 5xx, connection errors
	KindTimeout       ErrorKind = "timeout"        // deadline passed
	KindContentPolicy ErrorKind = "content_policy" // refused by the upstream's safety system; final
	KindBadRequest    ErrorKind = "bad_request"    // upstream rejected the input; final
	KindAuth          ErrorKind = "auth"           // credentials missing or rejected; final
	KindCircuitOpen   ErrorKind = "circuit_open"   // not called: its circuit breaker is open; try another model
	// KindUnsupported: the request is beyond this model's own limits (n
	// images when it makes one, a size or option it lacks), which another
	// model may not share: not retried on this model, and not final for
	// the request: the next model in the chain is tried.
	KindUnsupported ErrorKind = "unsupported"
)

// Error is an upstream failure.
type Error struct {
	Provider   string
	Kind       ErrorKind
	Status     int
	RetryAfter time.Duration
	Message    string
	// Reason is a content-policy refusal's cause as the vendor coded it
	// (OpenAI's error code, Gemini's block or finish reason, BFL's status,
	// Seedream's error code): a short code, never free text, so the caller
	// may see it where Message (which can echo a key or a host) stays in
	// the logs.
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (status %d): %s", e.Provider, e.Kind, e.Status, e.Message)
}

// Retryable reports whether another attempt could succeed.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindRateLimited, KindUnavailable, KindTimeout:
		return true
	}
	return false
}

// IsRetryable reports whether err is a retryable upstream error.
func IsRetryable(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Retryable()
}
