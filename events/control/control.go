// Package control is the record layout of routelab's control-plane topics
// (events.ControlTopics): compacted topics where a record's key names an
// object and the last record per key is its current value. Serve writes the
// policies and keys topics, the console and `routelab users` the users
// topic, and server, console and CLI read them through the keys and records
// defined here, so the layout is written once. The Kafka log that holds the
// records is events/kafka.ControlLog; this package does no I/O.
package control

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Change is one applied record. Deleted is set for tombstones (Value is nil).
// Offset is the record's offset in the topic, -1 for a record replayed from
// a snapshot of the current view.
type Change struct {
	Key     string
	Value   []byte
	Deleted bool
	Offset  int64
}

// Getter reads a key of a control-plane topic's current view.
type Getter interface {
	Get(key string) ([]byte, bool)
}

// Records of events.TopicPolicies: PolicyLiveKey holds the LivePolicy
// record, PolicyDocKey(version) each pushed policy document (router's JSON,
// canonical form).
const (
	PolicyLiveKey   = "live"
	policyDocPrefix = "policy/"
)

// PolicyHistory is how many previously live versions the live record keeps
// for rollback.
const PolicyHistory = 20

// PolicyDocKey is the key of a pushed policy version's document.
func PolicyDocKey(version string) string { return policyDocPrefix + version }

// PolicyVersionOfKey returns the version whose document key is key.
func PolicyVersionOfKey(key string) (string, bool) { return strings.CutPrefix(key, policyDocPrefix) }

// LivePolicy is the value under PolicyLiveKey: which version is live and
// the versions live before it, newest last.
type LivePolicy struct {
	Version string   `json:"version"`
	History []string `json:"history,omitempty"`
}

// ReadLivePolicy returns the live record; ok is false when none was written
// yet (a topic before its first push).
func ReadLivePolicy(g Getter) (rec LivePolicy, ok bool, err error) {
	b, ok := g.Get(PolicyLiveKey)
	if !ok {
		return LivePolicy{}, false, nil
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return LivePolicy{}, true, fmt.Errorf("policies: live record: %w", err)
	}
	return rec, true, nil
}

// Promote returns the record after version goes live: the live version
// joins the history (at most PolicyHistory kept). Promoting the live
// version changes nothing.
func (l LivePolicy) Promote(version string) LivePolicy {
	if l.Version == version {
		return l
	}
	h := append([]string(nil), l.History...)
	if l.Version != "" {
		h = append(h, l.Version)
	}
	if len(h) > PolicyHistory {
		h = h[len(h)-PolicyHistory:]
	}
	return LivePolicy{Version: version, History: h}
}

// Rollback returns the record with the previously live version live again,
// or false when there is none.
func (l LivePolicy) Rollback() (LivePolicy, bool) {
	if len(l.History) == 0 {
		return l, false
	}
	n := len(l.History) - 1
	return LivePolicy{Version: l.History[n], History: append([]string(nil), l.History[:n]...)}, true
}

// Encode is the record's wire form.
func (l LivePolicy) Encode() ([]byte, error) { return json.Marshal(l) }

// APIKeyKey is the key of an API key's record in events.TopicKeys; the value
// is the key as JSON (server.Key: id, tenant, secret hash, revocation).
func APIKeyKey(id string) string { return apiKeyPrefix + id }

// APIKeyID is the key id of an API key's record key (APIKeyKey's inverse);
// ok is false for the keys of other records.
func APIKeyID(recordKey string) (id string, ok bool) {
	return strings.CutPrefix(recordKey, apiKeyPrefix)
}

const apiKeyPrefix = "key/"

// UserKey is the key of a console account in events.TopicUsers: the user
// name itself; the value is the account as JSON (console.User).
func UserKey(name string) string { return name }
