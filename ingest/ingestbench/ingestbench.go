// Package ingestbench measures the event pipeline end to end: N synthetic
// decision events go producer -> broker -> ingest -> ClickHouse, and in the
// same run the same rows are inserted directly with clickhouse-go batches,
// the ceiling the pipeline is compared with. It is what `routelab bench
// ingest` runs.
package ingestbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"gonum.org/v1/gonum/stat"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/chlocal"
)

// Config says how big a run is and what it runs against.
type Config struct {
	Events int // N; required
	// ClickHouseDSN names a ClickHouse to use (two fresh databases are
	// created there and dropped afterwards); empty starts a local
	// clickhouse-server under a temporary dir.
	ClickHouseDSN string
	// The broker is always a fresh local one (events/broker), so the group
	// reads nothing but this run's events. BrokerOnDisk keeps its log in a
	// temporary dir (kfake writes and re-reads segment files, which a real
	// Kafka serves from the page cache); by default it is in memory.
	BrokerOnDisk bool
	Partitions   int // of the decisions topic; default events.DefaultPartitions
	Consumer     ingest.ConsumerConfig
	Seed         uint64
	// Progress receives human-readable progress; nil discards it.
	Progress io.Writer
	// Keep leaves the bench databases in place.
	Keep bool
}

// Result is one run's figures. Rates are events per second; latencies are
// produce-to-queryable: from the event's ts (set when it was enqueued) to
// the return of the insert that made it queryable.
type Result struct {
	Events                 int     `json:"events"`
	Produced               int64   `json:"produced"`         // acknowledged by the broker
	ProducerDropped        int64   `json:"producer_dropped"` // counted drops in the producer
	Ingested               uint64  `json:"ingested"`         // distinct event_ids in ClickHouse
	Lost                   int64   `json:"lost"`             // produced - ingested
	Duplicates             int64   `json:"duplicates"`       // rows an exact (FINAL) query sees beyond distinct event_ids
	Redelivered            int64   `json:"redelivered"`      // rows ingest inserted more than once (collapsed by FINAL)
	DeadLettered           int64   `json:"dead_lettered"`    //
	EventsPerS             float64 `json:"events_per_s"`     // pipeline: N / (first enqueue -> last insert)
	DirectInsertEventsPerS float64 `json:"direct_insert_events_per_s"`
	Ratio                  float64 `json:"ratio"` // events_per_s / direct_insert_events_per_s
	E2EP50MS               float64 `json:"e2e_p50_ms"`
	E2EP99MS               float64 `json:"e2e_p99_ms"`
	E2EMaxMS               float64 `json:"e2e_max_ms"`
	PipelineSeconds        float64 `json:"pipeline_s"`
	DirectSeconds          float64 `json:"direct_insert_s"`
	ProduceSeconds         float64 `json:"produce_s"` // first to last enqueue
	Rounds                 int64   `json:"rounds"`    // ingest insert rounds
	BatchSize              int     `json:"batch_size"`
	Workers                int     `json:"workers"`
	Partitions             int     `json:"partitions"`
	ClickHouseStartMS      float64 `json:"clickhouse_start_ms,omitempty"`
	ConsumerReadyMS        float64 `json:"consumer_ready_ms"` // group join + first event, excluded from the pipeline time
}

// Run performs one benchmark run.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Events <= 0 {
		return Result{}, errors.New("events must be > 0")
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = events.DefaultPartitions
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	tmp, err := os.MkdirTemp("", "routelab-bench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	res := Result{Events: cfg.Events, Partitions: cfg.Partitions}

	dsn := cfg.ClickHouseDSN
	if dsn == "" {
		ch, err := chlocal.Start(ctx, chlocal.Config{Dir: tmp + "/clickhouse"})
		if err != nil {
			return res, err
		}
		defer ch.Stop(context.Background())
		res.ClickHouseStartMS = ms(ch.StartDuration)
		fmt.Fprintf(cfg.Progress, "clickhouse-server started in %v at %s\n", ch.StartDuration.Round(time.Millisecond), ch.Addr)
		dsn = ch.DSN("default")
	}
	opts, _, err := ingest.ParseDSN(dsn)
	if err != nil {
		return res, err
	}
	suffix := randSuffix()
	direct, err := openDB(ctx, opts.Addr[0], dsn, "bench_direct_"+suffix, cfg.Keep)
	if err != nil {
		return res, err
	}
	defer direct.close()
	pipe, err := openDB(ctx, opts.Addr[0], dsn, "bench_pipeline_"+suffix, cfg.Keep)
	if err != nil {
		return res, err
	}
	defer pipe.close()

	batchSize := cfg.Consumer.BatchSize
	if batchSize <= 0 {
		batchSize = 20000
	}
	res.BatchSize = batchSize

	// The ceiling: the same rows straight into ClickHouse, same batch size.
	fmt.Fprintf(cfg.Progress, "direct insert of %d decisions in batches of %d ...\n", cfg.Events, batchSize)
	d, err := directInsert(ctx, direct.conn, direct.name, cfg, batchSize)
	if err != nil {
		return res, err
	}
	res.DirectSeconds = d.Seconds()
	res.DirectInsertEventsPerS = float64(cfg.Events) / d.Seconds()
	fmt.Fprintf(cfg.Progress, "direct insert: %.2fs, %.0f events/s\n", d.Seconds(), res.DirectInsertEventsPerS)

	b, err := broker.Start(ctx, broker.Config{DataDir: cfg.BrokerDir(tmp), Partitions: cfg.Partitions})
	if err != nil {
		return res, err
	}
	defer b.Close()
	if err := pipeline(ctx, cfg, b.Addr(), pipe, tmp, &res); err != nil {
		return res, err
	}
	if res.DirectInsertEventsPerS > 0 {
		res.Ratio = round3(res.EventsPerS / res.DirectInsertEventsPerS)
	}
	return res, nil
}

// BrokerDir is the broker's data dir under tmp, or "" (in memory).
func (cfg Config) BrokerDir(tmp string) string {
	if !cfg.BrokerOnDisk {
		return ""
	}
	return tmp + "/kafka"
}

type benchDB struct {
	conn  driver.Conn
	name  string
	admin string // DSN of the server's default database, to drop name
	keep  bool
}

func openDB(ctx context.Context, addr, dsn, name string, keep bool) (*benchDB, error) {
	opts, _, err := ingest.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("clickhouse://%s/%s", addr, name)
	if opts.Auth.Username != "" && opts.Auth.Username != "default" || opts.Auth.Password != "" {
		u = fmt.Sprintf("clickhouse://%s:%s@%s/%s", opts.Auth.Username, opts.Auth.Password, addr, name)
	}
	conn, db, err := ingest.Open(ctx, u)
	if err != nil {
		return nil, err
	}
	return &benchDB{conn: conn, name: db, keep: keep}, nil
}

func (b *benchDB) close() {
	if !b.keep {
		_ = b.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+b.name)
	}
	b.conn.Close()
}

func directInsert(ctx context.Context, conn driver.Conn, db string, cfg Config, batchSize int) (time.Duration, error) {
	w := ingest.NewWriter(conn, db)
	batch := ingest.NewBatch()
	began := time.Now()
	for i := 0; i < cfg.Events; i++ {
		ev := Decision(cfg.Seed, i, time.Now().UnixMilli())
		batch.AddDecision(&ev)
		if batch.Len() == batchSize || i == cfg.Events-1 {
			if err := w.Write(ctx, batch); err != nil {
				return 0, err
			}
			batch.Reset()
		}
	}
	return time.Since(began), nil
}

// pipeline runs ingest against the broker, produces the events through
// kafka.Producer, and waits until every one is queryable.
func pipeline(ctx context.Context, cfg Config, brokerAddr string, db *benchDB, tmp string, res *Result) error {
	var (
		mu        sync.Mutex
		latencies = make([]float64, 0, cfg.Events)
		inserted  int64
		lastAt    time.Time
		allIn     = make(chan struct{})
		closeOnce sync.Once
		warming   = true
	)
	ccfg := cfg.Consumer
	ccfg.Brokers = []string{brokerAddr}
	ccfg.Topics = []string{events.TopicDecisions}
	if ccfg.Logger == nil {
		ccfg.Logger = slog.New(slog.NewTextHandler(cfg.Progress, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	warm := make(chan struct{})
	var warmOnce sync.Once
	ccfg.OnCommit = func(ts []int64, at time.Time) {
		atMS := at.UnixMilli()
		mu.Lock()
		defer mu.Unlock()
		if warming {
			// The warm-up event: the group has joined and owns the partitions.
			warming = false
			warmOnce.Do(func() { close(warm) })
			return
		}
		for _, t := range ts {
			latencies = append(latencies, float64(atMS-t))
		}
		inserted += int64(len(ts))
		if at.After(lastAt) {
			lastAt = at
		}
		if inserted >= int64(cfg.Events) {
			closeOnce.Do(func() { close(allIn) })
		}
	}
	consumer, err := ingest.NewConsumer(ccfg, ingest.NewWriter(db.conn, db.name))
	if err != nil {
		return err
	}
	res.Workers = max(ccfg.Workers, 1)
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumed := make(chan error, 1)
	go func() { consumed <- consumer.Run(cctx) }()

	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{brokerAddr}, SpoolDir: tmp + "/spool", Logger: ccfg.Logger})
	if err != nil {
		return err
	}
	// Warm up: one event through the whole path, so the group join (a
	// one-time start-up cost) is not counted as pipeline time.
	readyStart := time.Now()
	warmEv := Decision(cfg.Seed, -1, time.Now().UnixMilli())
	warmEv.EventID = warmupID
	p.Enqueue(events.TopicDecisions, warmEv.RequestID, &warmEv)
	select {
	case <-warm:
	case <-time.After(2 * time.Minute):
		return errors.New("ingest consumer did not take the warm-up event within 2 minutes")
	case <-ctx.Done():
		return ctx.Err()
	}
	res.ConsumerReadyMS = ms(time.Since(readyStart))
	fmt.Fprintf(cfg.Progress, "consumer group ready after %v\n", time.Since(readyStart).Round(time.Millisecond))
	fmt.Fprintf(cfg.Progress, "pipeline: producing %d decisions -> broker (%d partitions) -> ingest (%d worker(s)) -> ClickHouse ...\n", cfg.Events, cfg.Partitions, res.Workers)
	began := time.Now()
	queueCap := p.Stats().QueueCapacity
	lastProgress := time.Now()
	for i := 0; i < cfg.Events; i++ {
		if i%1024 == 0 {
			// Enqueue never blocks and drops (counted) when the queue is
			// full; a bench that wants every event keeps the queue below full.
			for p.Stats().QueueDepth > queueCap-2048 {
				time.Sleep(200 * time.Microsecond)
			}
			if time.Since(lastProgress) >= 5*time.Second {
				lastProgress = time.Now()
				mu.Lock()
				fmt.Fprintf(cfg.Progress, "  enqueued %d, ingested %d\n", i, inserted)
				mu.Unlock()
			}
		}
		ev := Decision(cfg.Seed, i, time.Now().UnixMilli())
		p.Enqueue(events.TopicDecisions, ev.RequestID, &ev)
	}
	res.ProduceSeconds = time.Since(began).Seconds()
	closeCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = p.Close(closeCtx)
	cancel()
	ps := p.Stats()
	res.Produced, res.ProducerDropped = ps.Produced-1, ps.DroppedTotal() // minus the warm-up event
	if err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	fmt.Fprintf(cfg.Progress, "  produced %d in %.2fs (dropped %d); waiting for ingest ...\n", ps.Produced, res.ProduceSeconds, res.ProducerDropped)

	// Every acknowledged event must become queryable; wait for the inserts,
	// then check in ClickHouse itself.
	timeout := time.NewTimer(5 * time.Minute)
	defer timeout.Stop()
	if res.Produced == int64(cfg.Events) {
		select {
		case <-allIn:
		case <-timeout.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var distinct, finalRows uint64
	for {
		if err := db.conn.QueryRow(ctx, "SELECT uniqExact(event_id), count() FROM "+db.name+".decisions FINAL WHERE event_id != '"+warmupID+"'").Scan(&distinct, &finalRows); err != nil {
			return fmt.Errorf("count ingested: %w", err)
		}
		if int64(distinct) >= res.Produced {
			break
		}
		select {
		case <-timeout.C:
			fmt.Fprintf(cfg.Progress, "  gave up waiting: %d of %d queryable\n", distinct, res.Produced)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	stopConsumer()
	<-consumed

	mu.Lock()
	defer mu.Unlock()
	st := consumer.Stats()
	fmt.Fprintf(cfg.Progress, "ingest: %d rounds, fetch %v, insert %v, commit %v\n", st.Rounds, st.FetchTime.Round(time.Millisecond), st.InsertTime.Round(time.Millisecond), st.CommitTime.Round(time.Millisecond))
	res.Rounds = st.Rounds
	res.Ingested = distinct
	res.Lost = res.Produced - int64(distinct)
	res.Duplicates = int64(finalRows) - int64(distinct)
	res.Redelivered = st.Inserted - 1 - int64(distinct)
	res.DeadLettered = st.DeadLettered
	elapsed := lastAt.Sub(began)
	res.PipelineSeconds = elapsed.Seconds()
	if elapsed > 0 {
		res.EventsPerS = math.Round(float64(distinct) / elapsed.Seconds())
	}
	res.DirectInsertEventsPerS = math.Round(res.DirectInsertEventsPerS)
	slices.Sort(latencies)
	if len(latencies) > 0 {
		// nearest rank: the smallest latency with at least q of them at or below
		res.E2EP50MS = stat.Quantile(0.50, stat.Empirical, latencies, nil)
		res.E2EP99MS = stat.Quantile(0.99, stat.Empirical, latencies, nil)
		res.E2EMaxMS = latencies[len(latencies)-1]
	}
	fmt.Fprintf(cfg.Progress, "pipeline: %.2fs, %.0f events/s, e2e p50 %.0f ms p99 %.0f ms\n", res.PipelineSeconds, res.EventsPerS, res.E2EP50MS, res.E2EP99MS)
	return nil
}

// warmupID is the event id of the warm-up event (not counted).
const warmupID = "bench-warmup"

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func randSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	tenants   = []string{"acme", "globex", "initech", "umbrella", "hooli"}
	models    = []string{"fast-1", "heavy-2", "type-3", "edit-4"}
	keywords  = []string{"text", "logo", "photo", "portrait", "product", "abstract", "avatar", "poster"}
	words     = []string{"a", "red", "fox", "poster", "with", "bold", "title", "over", "city", "night", "studio", "light"}
	statuses  = []string{"ok", "ok", "ok", "ok", "error"}
	arms      = []string{"control", "treatment"}
	providers = []string{"sim"}
)

// Decision is synthetic decision i of a run: deterministic in (seed, i)
// apart from ts, shaped like serve's (three candidates, an experiment arm,
// one or two attempts, keywords and hashed n-grams).
func Decision(seed uint64, i int, ts int64) events.Decision {
	r := mrand.New(mrand.NewPCG(seed, uint64(i)))
	model := models[r.IntN(len(models))]
	prompt := ""
	for range 6 + r.IntN(10) {
		prompt += words[r.IntN(len(words))] + " "
	}
	cands := make([]events.Candidate, 3)
	for j := range cands {
		cands[j] = events.Candidate{Model: models[j], P: r.Float64(), CostUSD: 0.01 * float64(1+j), Eligible: j != 2}
	}
	cands[2].Reason = "latency"
	attempts := []events.Attempt{{Model: model, Provider: "sim", Status: statuses[r.IntN(len(statuses))], LatencyMS: int64(500 + r.IntN(12000)), CostUSD: 0.02}}
	if attempts[0].Status != "ok" {
		attempts = append(attempts, events.Attempt{Model: models[0], Provider: "sim", Status: "ok", LatencyMS: int64(500 + r.IntN(3000)), CostUSD: 0.01})
	}
	grams := make([]uint32, 8)
	for j := range grams {
		grams[j] = r.Uint32() % (1 << 18)
	}
	req := fmt.Sprintf("bench-req-%09d", i)
	return events.Decision{
		Header:        events.Header{EventID: fmt.Sprintf("bench-%d-%09d", seed, i), SchemaVersion: events.SchemaVersion, TS: ts, Tenant: tenants[r.IntN(len(tenants))], RequestID: req},
		Unit:          fmt.Sprintf("user-%d", r.IntN(5000)),
		Mode:          []string{"generate", "edit"}[r.IntN(2)],
		Tier:          []string{"draft", "standard", "premium"}[r.IntN(3)],
		Prompt:        prompt,
		Model:         model,
		Provider:      providers[0],
		PolicyVersion: "bench-v1",
		Propensity:    0.5 + r.Float64()/2,
		Explored:      r.IntN(20) == 0,
		Candidates:    cands,
		Features: events.Features{
			PromptLen: len(prompt), RefCount: r.IntN(3), EditDepth: r.IntN(8), Aspect: []float64{1, 1.5, 0.5625}[r.IntN(3)],
			TextHeavy: r.IntN(4) == 0, Preserve: r.IntN(3) == 0,
			Keywords:    []string{keywords[r.IntN(len(keywords))], keywords[r.IntN(len(keywords))]},
			HashedGrams: grams,
		},
		Arms:      []events.Arm{{Experiment: "bench-exp", Arm: arms[r.IntN(2)], Layer: "routing", Phase: 1, Unit: "u", Bucket: r.IntN(10000)}},
		Attempts:  attempts,
		Status:    "ok",
		QAPass:    r.IntN(10) != 0,
		LatencyMS: attempts[len(attempts)-1].LatencyMS,
		CostUSD:   0.02,
		Images:    1,
		Sampled:   r.IntN(50) == 0,
	}
}
