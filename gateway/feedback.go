package gateway

import (
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/routelab/routelab/events"
)

// Signal is a user signal about a served request (/v1/feedback).
type Signal struct {
	RequestID string
	Tenant    string // the caller's tenant
	Kind      string // thumbs_up, thumbs_down, download, regenerate, edit, report
	Value     float64
	Comment   string
	User      string
}

// CodeRequestNotFound: feedback named a request the caller was not served.
const CodeRequestNotFound = "request_not_found"

// feedbackLog remembers which tenant each recent request was served to,
// and which (request, signal kind) pairs were recorded, so that feedback
// counts only for the caller's own requests and only once.
type feedbackLog struct {
	served  *lru.Cache[string, string]   // request id -> tenant
	counted *lru.Cache[string, struct{}] // request id \x00 kind
}

func newFeedbackLog(size int) *feedbackLog {
	served, _ := lru.New[string, string](size)
	counted, _ := lru.New[string, struct{}](size)
	return &feedbackLog{served: served, counted: counted}
}

// Feedback records s as a signal event, once per (request, kind): a repeat
// returns duplicate and emits nothing, and the event id is derived from the
// pair, so repeats that reach other replicas collapse in ClickHouse too.
//
// A request this replica served to another tenant is refused with
// CodeRequestNotFound (not "forbidden": the answer must not tell that the
// id exists). A request it does not remember (served by another replica,
// or forgotten) is accepted only when its id has the form this gateway's
// unguessable ids have (IDs): a tenant can name only ids it was given.
func (g *Gateway) Feedback(s Signal) (duplicate bool, err error) {
	notFound := &Error{Code: CodeRequestNotFound, Field: "request_id", Message: "no such request for this API key"}
	if tenant, ok := g.feedback.served.Get(s.RequestID); ok {
		if tenant != s.Tenant {
			return false, notFound
		}
	} else if !wellFormedID(s.RequestID) {
		return false, notFound
	}
	pair := s.RequestID + "\x00" + s.Kind
	if err := g.refuseBacklogged(); err != nil {
		return false, err // not counted: the retry will be
	}
	if ok, _ := g.feedback.counted.ContainsOrAdd(pair, struct{}{}); ok {
		return true, nil
	}
	g.emit(events.TopicSignals, s.RequestID, &events.Signal{
		Header: events.Header{EventID: s.RequestID + ":signal:" + s.Kind, SchemaVersion: events.SchemaVersion, TS: g.deps.Now().UnixMilli(), Tenant: s.Tenant, RequestID: s.RequestID},
		Signal: s.Kind, Value: s.Value, Comment: s.Comment, User: s.User,
	})
	return false, nil
}

// wellFormedID reports whether id has the shape IDs.Next makes.
func wellFormedID(id string) bool {
	rest, ok := strings.CutPrefix(id, "req_")
	if !ok || len(rest) != 32 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
