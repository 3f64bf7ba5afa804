package server

import (
	"context"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/gateway"
)

// serve hands the job to the gateway, the one serving core; it loads the
// references (fetch, decode, normalise) only once the request is admitted.
func (h *handlers) serve(ctx context.Context, j *job) (*gateway.Outcome, error) {
	return h.deps.Gateway.Serve(ctx, gateway.Request{
		ID: j.id, Tenant: j.tenant, Unit: j.unit, Mode: j.mode, Prompt: j.prompt, Refs: jobRefs{h.refs, j.refs}, Mask: j.mask,
		N: j.n, Width: j.width, Height: j.height, Format: j.format, Compression: j.compressionPtr(), Tier: j.tier, Constraints: j.constraints,
		Pin: j.pin, ParentID: j.parentID,
		Background: j.opts.background, Moderation: j.opts.moderation, InputFidelity: j.opts.inputFidelity, Style: j.opts.style, User: j.opts.user,
	})
}

// jobRefs are a job's references as the gateway loads them.
type jobRefs struct {
	l    *refLoader
	refs []refInput
}

func (r jobRefs) Count() int { return len(r.refs) }

func (r jobRefs) Load(ctx context.Context) ([][]byte, error) { return r.l.load(ctx, r.refs) }

// gatewayStatus is the HTTP status of each gateway error code.
var gatewayStatus = map[string]int{
	gateway.CodeNoModel:         fiber.StatusServiceUnavailable,
	gateway.CodeDailyCapReached: fiber.StatusTooManyRequests,
	gateway.CodeBudgetExhausted: fiber.StatusTooManyRequests,
	gateway.CodeParentNotFound:  fiber.StatusBadRequest,
	gateway.CodeOverloaded:      fiber.StatusServiceUnavailable,
	gateway.CodeContentPolicy:   fiber.StatusBadRequest,
	gateway.CodeInvalidRequest:  fiber.StatusBadRequest,
	gateway.CodeTimeout:         fiber.StatusGatewayTimeout,
	gateway.CodeClientClosed:    499, // nginx's "client closed request"
	gateway.CodeProviderFailed:  fiber.StatusBadGateway,
	gateway.CodeRequestNotFound: fiber.StatusNotFound,
	// The replica's event backlog is full: another replica (or this one
	// shortly) can take the request; /readyz already says not ready.
	gateway.CodeEventsBacklogged: fiber.StatusServiceUnavailable,
	// The shared state store is down and the request has a daily cap or
	// a spend budget to check: refused, not served past it.
	gateway.CodeStateUnavailable: fiber.StatusServiceUnavailable,
}

// fromGateway is the HTTP error of a gateway error.
func fromGateway(e *gateway.Error) *Error {
	status, ok := gatewayStatus[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return &Error{Status: status, Code: e.Code, Message: e.Message, Field: e.Field, RetryAfter: e.RetryAfter}
}

// compressionPtr is output_compression for the gateway: nil when not given.
func (j *job) compressionPtr() *int {
	if j.compression < 0 {
		return nil
	}
	c := j.compression
	return &c
}
