package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

func header(id string, ts int64) events.Header {
	return events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: ts, Tenant: "acme", RequestID: "req-" + id}
}

func decision(id string, ts int64) *events.Decision {
	return &events.Decision{
		Header: header(id, ts), Unit: "u1", Mode: "edit", Tier: "standard", Prompt: "a red fox",
		Model: "fast-1", Provider: "sim", PolicyVersion: "p7", Propensity: 0.9, Explored: true,
		Candidates: []events.Candidate{{Model: "fast-1", P: 0.8, CostUSD: 0.01, Eligible: true}, {Model: "heavy-2", P: 0.9, CostUSD: 0.04, Eligible: false, Reason: "latency"}},
		Features:   events.Features{PromptLen: 9, RefCount: 1, EditDepth: 3, Aspect: 1.5, TextHeavy: true, Keywords: []string{"animal"}, HashedGrams: []uint32{7, 11}},
		Arms:       []events.Arm{{Experiment: "exp1", Arm: "treatment", Layer: "l1", Phase: 2, Unit: "u1", Bucket: 42, Propensity: 0.25, Stratum: "text"}},
		Attempts:   []events.Attempt{{Model: "fast-1", Provider: "sim", Status: "ok", LatencyMS: 2800, CostUSD: 0.01, CostSource: "usage"}},
		Status:     "ok", QAPass: true, LatencyMS: 2810, CostUSD: 0.01, Images: 1,
	}
}

func TestWriterRoundTripAndDuplicates(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	ctx := context.Background()
	w := ingest.NewWriter(db.Conn, db.Database)
	b := ingest.NewBatch()
	const ts = int64(1764000000123)
	for i := 0; i < 10; i++ {
		d := decision(fmt.Sprint("d", i), ts+int64(i))
		if i == 4 {
			d.Shadow, d.LiveRequestID = true, "d3"
		}
		if i == 5 {
			d.Sampled, d.SampleRate = true, 0.2 // a failure audit's boosted rate
		}
		b.AddDecision(d)
	}
	b.AddQA(&events.QAResult{Header: header("q1", ts), Model: "fast-1", Attempt: 1, Pass: true, Score: 0.7, Shadow: true, LiveRequestID: "d3",
		Checks: []events.QACheck{{Name: "blank", Pass: true, Value: 0.1}, {Name: "sharpness", Pass: true, Value: 30}}, OCRText: "GRAND OPENING"})
	b.AddSignal(&events.Signal{Header: header("s1", ts), Signal: "thumbs_up", Value: 1, User: "bob"})
	b.AddReview(&events.Review{Header: header("r1", ts), Kind: "score", Reviewer: "ann", Model: "fast-1",
		Scores: []events.Score{{Name: "fidelity", Value: 4}, {Name: "aesthetics", Value: 5}}})
	b.AddAudit(&events.Audit{Header: header("a1", ts), Action: "policy.push", Subject: "p7", Actor: "ml", Body: "{}"})
	if b.Len() != 14 {
		t.Fatalf("Len() = %d, want 14", b.Len())
	}
	if err := w.Write(ctx, b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// The same batch again: a redelivery after a crash before commit.
	if err := w.Write(ctx, b); err != nil {
		t.Fatalf("second Write: %v", err)
	}
	for table, want := range map[string]uint64{ingest.TableDecisions: 10, ingest.TableQA: 1, ingest.TableSignals: 1, ingest.TableReviews: 1, ingest.TableAudit: 1} {
		if got := db.Count(t, table); got != want {
			t.Errorf("count(%s FINAL) = %d, want %d", table, got, want)
		}
	}
	if got := db.Query(t, "SELECT count() FROM decisions"); got != "20" {
		t.Errorf("count(decisions) without FINAL = %s, want 20 (both deliveries stored until a merge)", got)
	}
	tests := []struct{ sql, want string }{
		{"SELECT ts_ms, toUnixTimestamp(ts) FROM decisions FINAL WHERE event_id = 'd0'", "1764000000123\t1764000000"},
		{"SELECT candidate_models, candidate_eligible, candidate_reasons FROM decisions FINAL WHERE event_id = 'd0'", "['fast-1','heavy-2']\t[1,0]\t['','latency']"},
		{"SELECT arm, exp, bucket, p, stratum FROM decisions FINAL ARRAY JOIN arm_names AS arm, arm_experiments AS exp, arm_buckets AS bucket, arm_propensities AS p, arm_strata AS stratum WHERE event_id = 'd1'", "treatment\texp1\t42\t0.25\ttext"},
		{"SELECT prompt_len, ref_count, edit_depth, aspect, text_heavy, preserve_subject, keywords, hashed_grams FROM decisions FINAL WHERE event_id = 'd2'", "9\t1\t3\t1.5\t1\t0\t['animal']\t[7,11]"},
		{"SELECT attempt_statuses, attempt_latency_ms, attempt_cost_sources FROM decisions FINAL WHERE event_id = 'd3'", "['ok']\t[2800]\t['usage']"},
		{"SELECT event_id, live_request_id FROM decisions FINAL WHERE shadow = 1", "d4\td3"},
		{"SELECT event_id, sample_rate FROM decisions FINAL WHERE sampled = 1", "d5\t0.2"},
		{"SELECT shadow, live_request_id FROM qa_results FINAL", "1\td3"},
		// the dashboards' rollups count live traffic only: 9 of 10, delivered twice
		{"SELECT countMerge(requests) FROM decisions_hourly", "18"},
		{"SELECT check_names, check_pass, check_values, ocr_text FROM qa_results FINAL", "['blank','sharpness']\t[1,1]\t[0.1,30]\tGRAND OPENING"},
		{"SELECT signal, value, user FROM signals FINAL", "thumbs_up\t1\tbob"},
		{"SELECT score_names, score_values FROM reviews FINAL", "['fidelity','aesthetics']\t[4,5]"},
		{"SELECT action, subject, actor FROM audit FINAL", "policy.push\tp7\tml"},
	}
	for _, tt := range tests {
		if got := db.Query(t, tt.sql); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.sql, got, tt.want)
		}
	}
}

func TestBatchAddRejects(t *testing.T) {
	good, _ := json.Marshal(decision("x", 1764000000000))
	v2 := decision("y", 1764000000000)
	v2.SchemaVersion = 99
	wrongVersion, _ := json.Marshal(v2)
	noID := decision("", 1764000000000)
	missingID, _ := json.Marshal(noID)
	tests := []struct {
		name, topic string
		give        []byte
		wantReason  string
	}{
		{"not json", events.TopicDecisions, []byte("{nope"), events.ReasonMalformedJSON},
		{"wrong type", events.TopicDecisions, []byte(`{"event_id":5}`), events.ReasonMalformedJSON},
		{"unknown version", events.TopicDecisions, wrongVersion, events.ReasonUnknownVersion},
		{"missing event_id", events.TopicDecisions, missingID, events.ReasonMissingEventID},
		{"unknown topic", "routelab.other", good, events.ReasonUnknownKind},
	}
	for _, tt := range tests {
		b := ingest.NewBatch()
		err := b.Add(tt.topic, tt.give)
		var de *events.DecodeError
		if !errors.As(err, &de) || de.Reason != tt.wantReason {
			t.Errorf("%s: Add = %v, want DecodeError %s", tt.name, err, tt.wantReason)
		}
		if b.Len() != 0 {
			t.Errorf("%s: Len() = %d after a rejected Add, want 0", tt.name, b.Len())
		}
	}
	b := ingest.NewBatch()
	if err := b.Add(events.TopicDecisions, good); err != nil || b.Len() != 1 {
		t.Errorf("Add(good) = %v, Len %d; want nil, 1", err, b.Len())
	}
}
