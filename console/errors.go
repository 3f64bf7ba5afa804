package console

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/routelab/routelab/evaluator/review"
)

// FieldError is a bad input with a stable code and the field at fault.
type FieldError struct {
	Code, Field, Message string
	Status               int // default 400
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Common errors of console handlers.
var (
	errNotFound  = &FieldError{Code: "not_found", Message: "not found", Status: fiber.StatusNotFound}
	errForbidden = &FieldError{Code: "forbidden", Message: "your role may not do this", Status: fiber.StatusForbidden}
	errNoData    = &FieldError{Code: "no_data_source", Message: "the console has no ClickHouse configured", Status: fiber.StatusServiceUnavailable}
)

// httpError maps any handler error to a status and the JSON error body;
// internal errors are logged by the caller and shown as "internal error".
func httpError(err error) (int, fiber.Map, bool) {
	var fe *FieldError
	var ve *review.ValidationError
	var fbe *fiber.Error
	switch {
	case errors.As(err, &fe):
		st := fe.Status
		if st == 0 {
			st = fiber.StatusBadRequest
		}
		return st, errBody(fe.Code, fe.Message, fe.Field), false
	case errors.As(err, &ve):
		return fiber.StatusBadRequest, errBody(ve.Code, ve.Message, ve.Field), false
	case errors.Is(err, review.ErrNoLease):
		return fiber.StatusConflict, errBody("no_lease", "this item is not leased to you (expired or already done)", "id"), false
	case errors.Is(err, review.ErrEmpty):
		return fiber.StatusNotFound, errBody("queue_empty", "no item left for you", ""), false
	case errors.As(err, &fbe):
		code := "http_error"
		switch fbe.Code {
		case fiber.StatusNotFound:
			code = "not_found"
		case fiber.StatusForbidden:
			code = "forbidden"
		case fiber.StatusMethodNotAllowed:
			code = "method_not_allowed"
		case fiber.StatusRequestEntityTooLarge:
			code = "too_large"
		case fiber.StatusTooManyRequests:
			code = "rate_limited"
		}
		return fbe.Code, errBody(code, fbe.Message, ""), false
	}
	return fiber.StatusInternalServerError, errBody("internal", "internal error", ""), true
}

func errBody(code, msg, field string) fiber.Map {
	return fiber.Map{"error": fiber.Map{"code": code, "message": msg, "field": field}}
}
