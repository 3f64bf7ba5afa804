package gateway

import "time"

// Error is a request the gateway could not serve, with a stable code the
// caller may switch on. The HTTP server maps codes to statuses (server's
// toError); the lab counts them.
type Error struct {
	Code       string
	Message    string
	Field      string        // the request field at fault, when there is one
	RetryAfter time.Duration // when retrying later can help
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + ": " + e.Field + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

// Stable error codes of Serve. Never rename one: clients and dashboards
// switch on them.
const (
	CodeNoModel         = "no_model_available" // no eligible model now
	CodeDailyCapReached = "daily_cap_reached"
	// CodeBudgetExhausted: the tenant's daily or monthly spend budget
	// (the message says which) is spent, or this request's estimate
	// would pass it; Retry-After is the budget's reset.
	CodeBudgetExhausted = "budget_exhausted"
	CodeParentNotFound  = "parent_not_found"
	CodeOverloaded      = "overloaded" // the provider's gate shed the call
	CodeContentPolicy   = "content_policy"
	CodeInvalidRequest  = "invalid_request" // the model rejected the input
	CodeTimeout         = "timeout"
	CodeClientClosed    = "client_closed"
	CodeProviderFailed  = "provider_failed"
	// CodeEventsBacklogged: the event pipeline holds as many events in
	// memory as it may (the broker and the spool take none); the request
	// is refused rather than served with events that could not be kept.
	CodeEventsBacklogged = "events_backlogged"
	// CodeStateUnavailable: the store shared by replicas (daily caps,
	// spend budgets) cannot be reached; the request is refused rather
	// than served past a cap or budget no replica can check.
	CodeStateUnavailable = "state_unavailable"
)

var errNoModel = &Error{Code: CodeNoModel, Message: "no model can serve this request now", RetryAfter: time.Second}

// errBacklogged's Retry-After is the event producer's longest wait between
// two tries of the broker: by then it has tried again.
var errBacklogged = &Error{Code: CodeEventsBacklogged, Message: "events cannot be recorded now; retry shortly", RetryAfter: 5 * time.Second}

var errStateUnavailable = &Error{Code: CodeStateUnavailable, Message: "limits cannot be checked now; retry shortly", RetryAfter: 5 * time.Second}
