package events

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	gojson "github.com/goccy/go-json"
)

// Reasons a message cannot be decoded. They are stable strings: ingest puts
// them on dead-lettered records and dashboards group by them.
const (
	ReasonMalformedJSON    = "malformed_json"
	ReasonUnknownKind      = "unknown_kind"
	ReasonUnknownVersion   = "unknown_schema_version"
	ReasonMissingEventID   = "missing_event_id"
	ReasonMissingTenant    = "missing_tenant"
	ReasonMissingRequestID = "missing_request_id"
	ReasonMissingTS        = "missing_ts"
)

// DecodeError says why a message is not a valid event; Reason is one of the
// Reason* constants.
type DecodeError struct {
	Reason string
	Detail string // human-readable context, e.g. the JSON error
}

func (e *DecodeError) Error() string {
	if e.Detail == "" {
		return "decode event: " + e.Reason
	}
	return "decode event: " + e.Reason + ": " + e.Detail
}

// NewID returns a new event id: a UUIDv7 string (48-bit Unix ms timestamp, then
// random bits), so ids sort roughly by time and never collide in practice.
// It costs well under a microsecond and takes no lock.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	hi, lo := rand.Uint64(), rand.Uint64() // runtime ChaCha8 source: unpredictable, per-thread
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = 0x70 | byte(hi>>60)&0x0f // version 7
	b[7] = byte(hi >> 52)
	b[8] = 0x80 | byte(lo>>58)&0x3f // RFC 9562 variant
	for i := 9; i < 16; i++ {
		b[i] = byte(lo >> (8 * (i - 9)))
	}
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// NewHeader fills the common header of a new event: a fresh event id, this
// build's schema version and the current time.
func NewHeader(tenant, requestID string) Header {
	return Header{EventID: NewID(), SchemaVersion: SchemaVersion, TS: time.Now().UnixMilli(), Tenant: tenant, RequestID: requestID}
}

// Encode marshals an event to its wire form (JSON). Raw bytes ([]byte,
// json.RawMessage) pass through untouched so already-encoded payloads (e.g. a
// dead-lettered original) can go through the same producer.
func Encode(ev any) ([]byte, error) {
	switch v := ev.(type) {
	case []byte:
		return v, nil
	case json.RawMessage:
		return v, nil
	}
	// goccy/go-json writes what encoding/json writes (tested), faster: a
	// decision event in 2.2-3.4 us against 4.5-7.1 us (go test -bench, a
	// noisy 2-core machine); serve encodes two or three events per request.
	b, err := gojson.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", ev, err)
	}
	return b, nil
}

// KindOfTopic maps a data topic to the kind of event it carries.
func KindOfTopic(topic string) (Kind, bool) {
	switch topic {
	case TopicDecisions:
		return KindDecision, true
	case TopicQA:
		return KindQA, true
	case TopicSignals:
		return KindSignal, true
	case TopicReviews:
		return KindReview, true
	case TopicAudit:
		return KindAudit, true
	}
	return "", false
}

// Decode parses one message of the given kind and validates its header. It
// returns a pointer to the typed event (*Decision, *QAResult, *Signal,
// *Review or *Audit) or a *DecodeError saying why the message is unusable:
// malformed JSON, a schema version this build does not know, or a missing
// event_id, tenant, request_id (not required on audit records, which belong
// to no request) or ts.
func Decode(kind Kind, b []byte) (any, error) {
	var (
		ev  any
		hdr *Header
	)
	switch kind {
	case KindDecision:
		v := new(Decision)
		ev, hdr = v, &v.Header
	case KindQA:
		v := new(QAResult)
		ev, hdr = v, &v.Header
	case KindSignal:
		v := new(Signal)
		ev, hdr = v, &v.Header
	case KindReview:
		v := new(Review)
		ev, hdr = v, &v.Header
	case KindAudit:
		v := new(Audit)
		ev, hdr = v, &v.Header
	default:
		return nil, &DecodeError{Reason: ReasonUnknownKind, Detail: string(kind)}
	}
	if err := json.Unmarshal(b, ev); err != nil {
		return nil, &DecodeError{Reason: ReasonMalformedJSON, Detail: err.Error()}
	}
	if err := validHeader(kind, hdr); err != nil {
		return nil, err
	}
	return ev, nil
}

func validHeader(kind Kind, h *Header) error {
	switch {
	case h.SchemaVersion != SchemaVersion:
		return &DecodeError{Reason: ReasonUnknownVersion, Detail: fmt.Sprintf("schema_version %d, this build reads %d", h.SchemaVersion, SchemaVersion)}
	case h.EventID == "":
		return &DecodeError{Reason: ReasonMissingEventID}
	case h.Tenant == "":
		return &DecodeError{Reason: ReasonMissingTenant}
	case h.RequestID == "" && kind != KindAudit:
		return &DecodeError{Reason: ReasonMissingRequestID}
	case h.TS <= 0:
		return &DecodeError{Reason: ReasonMissingTS}
	}
	return nil
}
