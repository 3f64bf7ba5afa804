package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker/brokertest"
)

// startKafkaCmd runs `routelab kafka --json` until the returned stop is called
// and returns the address it printed.
func startKafkaCmd(t *testing.T, dataDir string) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"kafka", "--data-dir", dataDir, "--kafka-addr", "127.0.0.1:0", "--json"}, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("routelab kafka printed nothing: %v (run: %v)", err, <-done)
	}
	var out struct{ Kafka, DataDir string }
	if err := json.Unmarshal([]byte(line), &out); err != nil || out.Kafka == "" {
		t.Fatalf("routelab kafka --json printed %q, want {\"kafka\": addr, ...}", line)
	}
	go io.Copy(io.Discard, pr)
	return out.Kafka, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("routelab kafka returned %v on Ctrl-C, want nil", err)
		}
	}
}

func TestKafkaCommandKeepsDataAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := brokertest.Context(t)

	addr, stop := startKafkaCmd(t, dir)
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: events.TopicSignals, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("req-1"), Value: []byte(`{"x":1}`)}); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	w.Close()
	stop()

	addr, stop = startKafkaCmd(t, dir)
	defer stop()
	r := brokertest.NewReader(t, kafka.ReaderConfig{Brokers: []string{addr}, Topic: events.TopicSignals, GroupID: "t", StartOffset: kafka.FirstOffset})
	defer r.Close() // before stop: closing waits for the reader's fetch
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("FetchMessage after restart: %v", err)
	}
	if string(m.Key) != "req-1" {
		t.Errorf("record after restart has key %q, want req-1", m.Key)
	}
}

func TestKafkaBrokersFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"default", nil, nil, "127.0.0.1:9092"},
		{"flag", []string{"--kafka-brokers", "a:1,b:2"}, nil, "a:1 b:2"},
		{"alias", []string{"--kafka", "a:1"}, map[string]string{"ROUTELAB_KAFKA_BROKERS": "x:9"}, "a:1"},
		{"env", nil, map[string]string{"ROUTELAB_KAFKA_BROKERS": "x:9, y:9"}, "x:9 y:9"},
		{"issue env", nil, map[string]string{"ROUTELAB_KAFKA": "z:9"}, "z:9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlagSet("t", "")
			v := kafkaFlag(fs, "127.0.0.1:9092")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			env := Env{Getenv: func(k string) string { return tt.env[k] }}
			if got := strings.Join(kafkaBrokers(fs, env, v), " "); got != tt.want {
				t.Errorf("kafkaBrokers(%v, %v) = %q, want %q", tt.args, tt.env, got, tt.want)
			}
		})
	}
}
