package server

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/gateway"
)

// Error is a failure shown to the caller: an HTTP status, a stable code, a
// message and, for validation failures, the offending field. Every handler
// returns errors; errorHandler is the one place that turns them into HTTP.
type Error struct {
	Status     int
	Code       string
	Message    string
	Field      string
	RetryAfter time.Duration // sets Retry-After when > 0
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + ": " + e.Field + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

// Stable error codes. Clients may switch on them; never rename one.
const (
	CodeInvalidJSON        = "invalid_json"
	CodeInvalidRequest     = "invalid_request"
	CodeInvalidField       = "invalid_field"
	CodeUnsupportedMedia   = "unsupported_media_type"
	CodeBodyTooLarge       = "body_too_large"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeRateLimited        = "rate_limited"
	CodeDailyCapReached    = "daily_cap_reached"
	CodeOverloaded         = "overloaded"
	CodeIdempotencyReuse   = "idempotency_key_reused"
	CodeUnknownModel       = "unknown_model"
	CodeReferenceFetch     = "reference_fetch_failed"
	CodeReferenceForbidden = "reference_url_forbidden"
	CodeReferenceFormat    = "reference_unsupported_format"
	CodeReferenceTooLarge  = "reference_too_large"
	CodeReferenceTooMany   = "too_many_references"
	CodeReferenceBomb      = "reference_too_many_pixels"
	CodeEditNeedsImage     = "edit_requires_image"
	CodeProviderFailed     = "provider_failed"
	CodeContentPolicy      = "content_policy"
	CodeTimeout            = "timeout"
	CodeShuttingDown       = "shutting_down"
	CodeStorageUnavailable = "storage_unavailable"
	// CodeUnsupportedOption: no model this request may use can do an
	// option it asks for (a transparent background from a model without).
	CodeUnsupportedOption = "unsupported_option"
	CodeInternal          = "internal_error"
)

func errField(code, field, msg string) *Error {
	return &Error{Status: fiber.StatusBadRequest, Code: code, Field: field, Message: msg}
}

func errInvalid(field, msg string) *Error { return errField(CodeInvalidField, field, msg) }

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// Type mirrors code for OpenAI SDKs, which read error.type.
	Type string `json:"type,omitempty"`
}

// errorHandler translates any error returned by a handler (or by fiber and
// fasthttp themselves: body too large, unknown route, bad method) into the
// JSON error shape. Unexpected errors are logged here, once, and shown as
// "internal error". A body refused as too large is first given to refusal,
// which names the missing credential when that was the reason (see newApp).
func errorHandler(logger *slog.Logger, refusal func(*fiber.Ctx) error) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		e := toError(err)
		if e.Code == CodeBodyTooLarge && refusal != nil {
			if r := refusal(c); r != nil {
				e = toError(r)
			}
		}
		if e.Status >= 500 && e.Code == CodeInternal {
			logger.Error("internal error", "request_id", requestID(c), "path", c.Path(), "err", err)
		}
		if e.RetryAfter > 0 {
			secs := int((e.RetryAfter + time.Second - 1) / time.Second)
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		}
		return c.Status(e.Status).JSON(errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field, Type: e.Code}})
	}
}

// withoutRequestDump cuts the copy of the raw request that fasthttp appends
// to its parse errors ("... Buffer size=N, contents: ..."): it would echo
// the request's headers, API key included, into the response and the logs.
func withoutRequestDump(msg string) string {
	if i := strings.Index(msg, "Buffer size="); i >= 0 {
		msg = strings.TrimRight(msg[:i], " .")
	}
	return msg
}

func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return fromGateway(ge)
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			return &Error{Status: fe.Code, Code: CodeBodyTooLarge, Message: "request body too large"}
		case fiber.StatusNotFound:
			return &Error{Status: fe.Code, Code: CodeNotFound, Message: fe.Message}
		case fiber.StatusMethodNotAllowed:
			return &Error{Status: fe.Code, Code: CodeMethodNotAllowed, Message: fe.Message}
		case fiber.StatusUnsupportedMediaType:
			return &Error{Status: fe.Code, Code: CodeUnsupportedMedia, Message: fe.Message}
		case fiber.StatusRequestTimeout:
			return &Error{Status: fe.Code, Code: CodeTimeout, Message: fe.Message}
		case fiber.StatusRequestHeaderFieldsTooLarge:
			return &Error{Status: fe.Code, Code: CodeInvalidRequest, Message: fe.Message}
		case fiber.StatusBadGateway:
			// fiber's answer to a network error while reading a request (the
			// client reset or closed mid-request): the client's doing, not an
			// internal error to log. Our own upstream failures are *Error.
			return &Error{Status: fiber.StatusBadRequest, Code: CodeInvalidRequest, Message: "the connection failed while the request was read"}
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return &Error{Status: fe.Code, Code: CodeInvalidRequest, Message: withoutRequestDump(fe.Message)}
		}
	}
	return &Error{Status: fiber.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}
