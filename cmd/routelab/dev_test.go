package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/devstack"
	"github.com/routelab/routelab/events"
)

// devWait bounds the dev tests' waits (dev.json written, a row ingested,
// dev stopped) only so that a hang fails with a message: each wait ends on
// what it waits for. routelab dev starts ClickHouse, a broker, serve,
// ingest and the console; on a 2-core machine running the whole suite
// under -race that has taken minutes, so this is no timing budget.
const devWait = 5 * time.Minute

// startDevForTest runs `routelab dev --ports auto` until the returned stop is
// called, and returns the dev.json it wrote.
func startDevForTest(t *testing.T, dir string, extra ...string) (devstack.Info, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append([]string{"dev", "--data-dir", dir, "--ports", "auto"}, extra...)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, io.Discard, io.Discard)
	}()
	path := filepath.Join(dir, "dev.json")
	deadline := time.Now().Add(devWait)
	var info devstack.Info
	for {
		if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &info) == nil {
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("dev exited before writing dev.json: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("dev wrote no dev.json in %v", devWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev returned %v after Ctrl-C, want nil", err)
			}
		case <-time.After(devWait):
			t.Fatalf("dev did not stop within %v of Ctrl-C", devWait)
		}
	}
	t.Cleanup(stop)
	return info, stop
}

func chQuery(t *testing.T, httpURL, sql string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, httpURL+"/", strings.NewReader(sql))
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query %q: %s %s", sql, resp.Status, b)
	}
	return strings.TrimSpace(string(b))
}

// devImages posts a generate request with key to each base URL in turn
// and returns the statuses.
func devImages(t *testing.T, key string, urls ...string) []int {
	t.Helper()
	var out []int
	for _, u := range urls {
		req, _ := http.NewRequest(http.MethodPost, u+"/v1/images", strings.NewReader(`{"prompt":"a red kite"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", u, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, resp.StatusCode)
	}
	return out
}

func TestDevUpIngestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	// Two replicas sharing the dev tenant's cap of 2 images a day.
	flags := []string{"--replicas", "2", "--limit-daily-images-tenant", "dev=2"}
	info, stop := startDevForTest(t, dir, flags...)
	if info.Kafka == "" || info.ClickHouse == "" || info.ClickHouseHTTP == "" || info.Database != "routelab" {
		t.Fatalf("dev.json = %+v, want kafka, clickhouse, clickhouse_http and database routelab", info)
	}
	if len(info.APIReplicas) != 2 || info.APIReplicas[0] != info.API || info.Redis == "" {
		t.Fatalf("dev.json api_replicas %v (api %s), redis %q; want two replicas, api first, and the state store", info.APIReplicas, info.API, info.Redis)
	}
	for _, table := range []string{"decisions", "qa_results", "reviews", "signals", "audit"} {
		if got := chQuery(t, info.ClickHouseHTTP, "EXISTS TABLE routelab."+table); got != "1" {
			t.Errorf("EXISTS TABLE routelab.%s = %s, want 1", table, got)
		}
	}

	ev := events.Decision{Header: events.NewHeader("acme", "req-1"), Model: "fast-1", Status: "ok"}
	value, _ := json.Marshal(ev)
	w := &kafka.Writer{Addr: kafka.TCP(info.Kafka), Topic: events.TopicDecisions, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), devWait)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("req-1"), Value: value}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	w.Close()
	deadline := time.Now().Add(devWait)
	for chQuery(t, info.ClickHouseHTTP, "SELECT count() FROM routelab.decisions FINAL") != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("the produced decision did not reach ClickHouse in %v", devWait)
		}
		time.Sleep(20 * time.Millisecond)
	}

	r1, r2 := info.APIReplicas[0], info.APIReplicas[1]
	if got, want := devImages(t, info.APIKey, r1, r2, r1), []int{200, 200, 429}; !slices.Equal(got, want) {
		t.Errorf("statuses alternating replicas with a cap of 2 = %v, want %v", got, want)
	}

	stop()
	if _, err := os.Stat(filepath.Join(dir, "dev.json")); !os.IsNotExist(err) {
		t.Errorf("dev.json still there after stop (err %v)", err)
	}

	info2, _ := startDevForTest(t, dir, flags...)
	if got := chQuery(t, info2.ClickHouseHTTP, "SELECT event_id FROM routelab.decisions FINAL WHERE event_id = '"+ev.EventID+"'"); got != ev.EventID {
		t.Errorf("after restart decisions = %q, want the one event %s", got, ev.EventID)
	}
	// The state store kept the day's counter.
	if got := devImages(t, info2.APIKey, info2.APIReplicas[1]); got[0] != 429 {
		t.Errorf("after restart the capped tenant got %d, want 429: the count is kept", got[0])
	}
}
