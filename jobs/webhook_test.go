package jobs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/routelab/routelab/jobs"
)

func TestPostDriftBreach(t *testing.T) {
	got := make(chan map[string]any, 1)
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- body
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if err := jobs.PostDriftBreach(context.Background(), srv.URL, map[string]bool{"breached": true}); err != nil {
		t.Fatal(err)
	}
	body := <-got
	if body["event"] != "routelab.drift.breach" || body["report"].(map[string]any)["breached"] != true {
		t.Errorf("webhook body = %v", body)
	}
	status = http.StatusBadGateway
	err := jobs.PostDriftBreach(context.Background(), srv.URL, nil)
	<-got
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("PostDriftBreach to a failing hook = %v, want its status", err)
	}
}
