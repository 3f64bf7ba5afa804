package server

import (
	"context"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/gateway"
)

// serve loads the job's references and hands it to the gateway, the one
// serving core.
func (h *handlers) serve(ctx context.Context, j *job) (*gateway.Outcome, error) {
	refs, err := h.refs.load(ctx, j.refs)
	if err != nil {
		return nil, err
	}
	return h.deps.Gateway.Serve(ctx, gateway.Request{
		ID: j.id, Tenant: j.tenant, Unit: j.unit, Mode: j.mode, Prompt: j.prompt, Refs: refs, Mask: j.mask,
		N: j.n, Width: j.width, Height: j.height, Format: j.format, Tier: j.tier, Constraints: j.constraints,
		Pin: j.pin, ParentID: j.parentID,
	})
}

// gatewayStatus is the HTTP status of each gateway error code.
var gatewayStatus = map[string]int{
	gateway.CodeNoModel:         fiber.StatusServiceUnavailable,
	gateway.CodeDailyCapReached: fiber.StatusTooManyRequests,
	gateway.CodeParentNotFound:  fiber.StatusBadRequest,
	gateway.CodeOverloaded:      fiber.StatusServiceUnavailable,
	gateway.CodeContentPolicy:   fiber.StatusBadRequest,
	gateway.CodeInvalidRequest:  fiber.StatusBadRequest,
	gateway.CodeTimeout:         fiber.StatusGatewayTimeout,
	gateway.CodeClientClosed:    499, // nginx's "client closed request"
	gateway.CodeProviderFailed:  fiber.StatusBadGateway,
	gateway.CodeRequestNotFound: fiber.StatusNotFound,
}

// fromGateway is the HTTP error of a gateway error.
func fromGateway(e *gateway.Error) *Error {
	status, ok := gatewayStatus[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return &Error{Status: status, Code: e.Code, Message: e.Message, Field: e.Field, RetryAfter: e.RetryAfter}
}
