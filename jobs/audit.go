package jobs

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/routelab/routelab/events"
)

// NewAudit builds the audit event for a job's report.
func NewAudit(now time.Time, action, subject string, body any) (events.Audit, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return events.Audit{}, fmt.Errorf("encode %s report: %w", action, err)
	}
	return events.Audit{
		Header: events.Header{EventID: fmt.Sprintf("%s-%d-%s", action, now.UnixNano(), shortHash(string(b))), SchemaVersion: events.SchemaVersion, TS: now.UnixMilli(), Tenant: "_system", RequestID: ""},
		Action: action, Subject: subject, Actor: "routelab-jobs", Body: string(b),
	}, nil
}

func shortHash(s string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return fmt.Sprintf("%012x", h&0xffffffffffff)
}
