package main

// The fault campaign: the whole event path (serve's producer, the broker,
// ingest, ClickHouse) with real parts, one fault at a time. Each scenario
// sends image requests to a real serve, injects its fault, ends it, and
// measures, for the requests serve answered 200 (each enqueued a decision
// event): how many have their decision row in ClickHouse (FINAL), how many
// duplicate events remain after FINAL, and how long after the fault ended
// the last row arrived. Every figure is logged as a "fault:" line; with
// ROUTELAB_FAULTS_REPORT=file they are also appended there as JSON lines,
// which is how docs/reliability.md's table was made.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/chlocal"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/lab/labtest"
)

// faultsChildEnv, when set, makes the test binary run `routelab` with these
// arguments (separated by \x1f) instead of the tests: the campaign starts
// serve and ingest as processes of their own so it can SIGKILL them.
const faultsChildEnv = "ROUTELAB_FAULTS_CHILD"

func TestMain(m *testing.M) {
	if args := os.Getenv(faultsChildEnv); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, strings.Split(args, "\x1f"), os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "routelab:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// faultResult is one row of the reliability table.
type faultResult struct {
	Fault      string  `json:"fault"`
	Answered   int     `json:"answered_200"`     // requests answered 200: decision events enqueued
	Rows       int     `json:"rows_final"`       // of those, decisions in ClickHouse (FINAL)
	Lost       int     `json:"lost"`             // Answered - Rows
	Bound      int     `json:"loss_bound"`       // the loss allowed (0 but for a SIGKILL of serve)
	DupsFinal  int     `json:"duplicates_final"` // count() - uniqExact(event_id) over decisions FINAL
	Redeliv    int     `json:"redelivered"`      // the same without FINAL: copies the fault caused
	RecoverSec float64 `json:"recover_s"`        // fault ended -> last row in ClickHouse
	Note       string  `json:"note,omitempty"`
}

func report(t *testing.T, r faultResult) {
	t.Helper()
	r.Lost = r.Answered - r.Rows
	b, _ := json.Marshal(r)
	t.Logf("fault: %s", b)
	if path := os.Getenv("ROUTELAB_FAULTS_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "%s\n", b)
	}
	if r.Lost > r.Bound {
		t.Errorf("%s: %d of %d answered requests have no decision row, allowed %d", r.Fault, r.Lost, r.Answered, r.Bound)
	}
	if r.DupsFinal != 0 {
		t.Errorf("%s: %d duplicate decisions after FINAL, want 0", r.Fault, r.DupsFinal)
	}
}

// campaign is one scenario's stack: a broker that can be stopped and
// restarted on the same address and data, a ClickHouse database, serve
// and ingest.
type campaign struct {
	t        *testing.T
	dir      string
	brAddr   string
	br       *broker.Broker
	ch       *ingesttest.DB
	group    string
	serve    string // base URL
	adminURL string // base URL of serve's admin listener
	key      string
	admin    string
	ingests  []func() // stop functions of running in-process ingests
	// serveDir is serve's --data-dir (spool/ and blobs/); sampleRate its
	// --review-sample-rate.
	serveDir   string
	sampleRate string
}

// childLog is where in-process serve and ingest log: nowhere, unless
// ROUTELAB_FAULTS_DEBUG is set.
func childLog() io.Writer {
	if os.Getenv("ROUTELAB_FAULTS_DEBUG") != "" {
		return os.Stderr
	}
	return io.Discard
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func newCampaign(t *testing.T, ch *ingesttest.DB) *campaign {
	t.Helper()
	c := &campaign{t: t, dir: t.TempDir(), brAddr: freeAddr(t), ch: ch, group: "faults-" + ch.Database, admin: "faults-admin", sampleRate: "0"}
	c.serveDir = filepath.Join(c.dir, "serve")
	c.startBroker()
	t.Cleanup(func() {
		for _, stop := range c.ingests {
			stop()
		}
		if c.br != nil {
			c.br.Close()
		}
	})
	return c
}

func (c *campaign) startBroker() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Addr: c.brAddr, DataDir: filepath.Join(c.dir, "kafka"), Partitions: 2})
	if err != nil {
		c.t.Fatalf("broker.Start: %v", err)
	}
	c.br = b
}

func (c *campaign) stopBroker() {
	c.br.Close()
	c.br = nil
}

// serveArgs are the arguments of serve as the campaign runs it: simulated
// models without latency, limits out of the way.
func (c *campaign) serveArgs(addr string) []string {
	adminAddr := freeAddr(c.t)
	c.adminURL = "http://" + adminAddr
	return []string{"serve", "--http-addr", addr, "--admin-addr", adminAddr, "--blob-min-free", "0", "--kafka-brokers", c.brAddr, "--data-dir", c.serveDir,
		"--admin-token", c.admin, "--sim-latency-scale", "0", "--limit-rate", "1000000", "--limit-burst", "1000000",
		"--review-sample-rate", c.sampleRate, "--drain-timeout", "30s"}
}

// startServeInProcess runs serve through run() until the test ends.
func (c *campaign) startServeInProcess() {
	c.t.Helper()
	addr := freeAddr(c.t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, c.serveArgs(addr), func(string) string { return "" }, io.Discard, childLog()) }()
	c.t.Cleanup(func() { cancel(); <-done })
	c.serve = "http://" + addr
	c.awaitServe(done)
}

// child is serve or ingest running as a process of its own.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// startChild runs `routelab args...` as a child process (so it can be
// signalled) with its stderr going to stderr, until the test ends.
func (c *campaign) startChild(args []string, stderr io.Writer) *child {
	c.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), faultsChildEnv+"="+strings.Join(args, "\x1f"))
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", args[0], err)
	}
	p := &child{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done })
	return p
}

// wait waits for the child to exit and returns how it did.
func (p *child) wait() error {
	<-p.done
	return p.err
}

// startServeProcess runs serve as a child process.
func (c *campaign) startServeProcess() *child {
	c.t.Helper()
	var stderr syncBuffer
	return c.startServeProcessLogging(&stderr)
}

// syncBuffer is a bytes.Buffer a child process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServeProcessLogging is startServeProcess with serve's stderr going
// to stderr.
func (c *campaign) startServeProcessLogging(stderr *syncBuffer) *child {
	c.t.Helper()
	addr := freeAddr(c.t)
	p := c.startChild(c.serveArgs(addr), stderr)
	c.t.Cleanup(func() {
		if c.t.Failed() {
			c.t.Logf("serve stderr:\n%s", stderr.String())
		}
	})
	c.serve = "http://" + addr
	exited := make(chan error, 1)
	go func() { exited <- p.wait() }()
	c.awaitServe(exited)
	return p
}

// awaitServe waits for /readyz, then makes the campaign's tenant key.
func (c *campaign) awaitServe(done <-chan error) {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-done:
			c.t.Fatalf("serve exited before it was ready: %v", err)
		default:
		}
		if resp, err := http.Get(c.serve + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal("serve not ready after 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodPost, c.adminURL+"/admin/keys", strings.NewReader(`{"tenant":"faults"}`))
	req.Header.Set("Authorization", "Bearer "+c.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("create key: %v", err)
	}
	defer resp.Body.Close()
	var k struct{ Secret string }
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || k.Secret == "" {
		c.t.Fatalf("create key = %d: %v", resp.StatusCode, err)
	}
	c.key = k.Secret
}

func (c *campaign) ingestArgs() []string {
	return []string{"ingest", "--kafka-brokers", c.brAddr, "--clickhouse-dsn", c.ch.DSN(), "--ingest-group", c.group,
		"--ingest-batch-wait", "50ms", "--ingest-batch-size", "500"}
}

// startIngest runs ingest through run() until stop (or the test's end).
func (c *campaign) startIngest() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, c.ingestArgs(), func(string) string { return "" }, io.Discard, childLog()) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	c.ingests = append(c.ingests, stop)
	return stop
}

// startIngestProcess runs ingest as a child process.
func (c *campaign) startIngestProcess() *child {
	c.t.Helper()
	return c.startChild(c.ingestArgs(), childLog())
}

// load sends image requests from workers until stop is closed or n have
// been answered 200 (n 0: no limit), and returns the request ids answered
// 200. Errors (refused connections while serve is down, 503 while it
// drains) are expected under faults and only counted.
type load struct {
	mu      sync.Mutex
	ids     []string
	failed  atomic.Int64
	stopped chan struct{}
	stop    func()
	done    sync.WaitGroup
}

func (c *campaign) startLoad(workers, n int) *load {
	l := &load{stopped: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	var stopOnce sync.Once
	for w := range workers {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stopped:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, c.serve+"/v1/images", strings.NewReader(fmt.Sprintf(`{"prompt":"fault campaign %d-%d","model":"sim-lite"}`, w, i)))
				req.Header.Set("Authorization", "Bearer "+c.key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					l.failed.Add(1)
					time.Sleep(5 * time.Millisecond) // serve is away: do not spin
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
					continue
				}
				l.mu.Lock()
				l.ids = append(l.ids, resp.Header.Get("x-routelab-request-id"))
				full := n > 0 && len(l.ids) >= n
				l.mu.Unlock()
				if full {
					stopOnce.Do(func() { close(l.stopped) })
					return
				}
			}
		}()
	}
	l.stop = func() { stopOnce.Do(func() { close(l.stopped) }) }
	return l
}

func (l *load) answered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

// awaitAnswered waits until at least n requests were answered 200.
func (l *load) awaitAnswered(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for l.answered() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests answered in 5 minutes, want %d (%d failed)", l.answered(), n, l.failed.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finish stops the load and returns the ids answered 200.
func (l *load) finish() []string {
	l.stop()
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ids...)
}

// chExec runs a statement over ClickHouse's HTTP interface, with body as
// the data of an INSERT.
func (c *campaign) chExec(sql string, body io.Reader) string {
	c.t.Helper()
	u := c.ch.HTTPURL + "/?database=" + c.ch.Database + "&query=" + url.QueryEscape(sql)
	req, _ := http.NewRequest(http.MethodPost, u, body)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("clickhouse %q: %v", sql, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("clickhouse %q: %s %s", sql, resp.Status, b)
	}
	return strings.TrimSpace(string(b))
}

func (c *campaign) chInt(sql string) int {
	c.t.Helper()
	var n int
	if _, err := fmt.Sscan(c.chExec(sql, nil), &n); err != nil {
		c.t.Fatalf("clickhouse %q: not a number: %v", sql, err)
	}
	return n
}

// measure records ids as expected and waits until every one has its
// decision row or, when a loss is allowed (bound > 0), until ingest has
// caught up with everything the broker holds and serve (when still up)
// holds nothing back; then it fills r's counts. from is when the fault
// ended; the recovery time runs to the last new row.
func (c *campaign) measure(r faultResult, ids []string, from time.Time) faultResult {
	c.t.Helper()
	c.chExec("CREATE TABLE IF NOT EXISTS expected (request_id String) ENGINE = Memory", nil)
	c.chExec("TRUNCATE TABLE expected", nil)
	c.chExec("INSERT INTO expected FORMAT TSV", strings.NewReader(strings.Join(ids, "\n")+"\n"))
	found := func() int {
		return c.chInt("SELECT count() FROM expected WHERE request_id IN (SELECT request_id FROM decisions FINAL)")
	}
	deadline := time.Now().Add(5 * time.Minute)
	rows, last, lastChange := 0, -1, time.Now()
	for {
		rows = found()
		if rows != last {
			last, lastChange = rows, time.Now()
		}
		if rows >= len(ids) || r.Bound > 0 && c.settled() && found() == rows {
			break
		}
		if time.Now().After(deadline) {
			c.t.Errorf("%s: waited 5 minutes for the rows", r.Fault)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.RecoverSec = max(0, lastChange.Sub(from).Seconds())
	r.Answered, r.Rows = len(ids), rows
	r.DupsFinal = c.chInt("SELECT count() - uniqExact(event_id) FROM decisions FINAL")
	r.Redeliv = c.chInt("SELECT count() - uniqExact(event_id) FROM decisions")
	return r
}

// settled reports whether ingest has committed everything the broker holds
// on the decisions topic and serve, if it still answers, has no event left
// in memory or in its spool: no more rows will come.
func (c *campaign) settled() bool {
	c.t.Helper()
	if resp, err := http.Get(c.adminURL + "/metrics"); err == nil {
		resp.Body.Close()
		if c.metric("routelab_events_queue_depth") > 0 || c.metric("routelab_events_spool_events") > 0 {
			return false
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(c.brAddr), Timeout: 10 * time.Second}
	ps := []int{0, 1}
	var req []kafka.OffsetRequest
	for _, p := range ps {
		req = append(req, kafka.LastOffsetOf(p))
	}
	ends, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{events.TopicDecisions: req}})
	if err != nil {
		return false
	}
	done, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.group, Topics: map[string][]int{events.TopicDecisions: ps}})
	if err != nil {
		return false
	}
	committed := map[int]int64{}
	for _, p := range done.Topics[events.TopicDecisions] {
		committed[p.Partition] = p.CommittedOffset
	}
	for _, p := range ends.Topics[events.TopicDecisions] {
		if p.LastOffset > 0 && committed[p.Partition] < p.LastOffset {
			return false
		}
	}
	return true
}

// slow skips a scenario that waits out a Kafka consumer-group session
// (about 30 s) unless ROUTELAB_FAULTS_SLOW is set, as `make soak` does.
func slow(t *testing.T) {
	t.Helper()
	if os.Getenv("ROUTELAB_FAULTS_SLOW") == "" {
		t.Skip("slow fault (ingest rejoins its consumer group after the session timeout): runs in make soak")
	}
}

// The broker goes away while serve keeps answering (its producer spools to
// disk), and comes back on the same address with its data.
func TestFaultBrokerDownAndBack(t *testing.T) {
	labtest.Heavy(t)
	slow(t)
	c := newCampaign(t, ingesttest.ClickHouse(t))
	c.startServeInProcess()
	c.startIngest()
	l := c.startLoad(4, 0)
	l.awaitAnswered(t, 50)
	c.stopBroker()
	before := l.answered()
	l.awaitAnswered(t, before+100) // served while the broker is down
	c.startBroker()
	back := time.Now()
	l.awaitAnswered(t, l.answered()+50)
	ids := l.finish()
	report(t, c.measure(faultResult{Fault: "broker down and back"}, ids, back))
}

// The broker answers produce requests with errors, some after appending
// (the producer retries what was written: copies in Kafka), and drops
// connections.
func TestFaultBrokerProduceErrors(t *testing.T) {
	labtest.Heavy(t)
	t.Parallel()
	c := newCampaign(t, ingesttest.ClickHouse(t))
	c.startServeInProcess()
	c.startIngest()
	l := c.startLoad(4, 0)
	l.awaitAnswered(t, 20)
	cl := c.br.Cluster()
	appended := cl.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicasAfterAppend, Count: 5})
	refused := cl.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: 5})
	var dropped atomic.Int64
	cl.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if dropped.Add(1) < 5 {
			cl.KeepControl()
		} else {
			cl.DropControl() // the fifth: then the faults above take over
		}
		return nil, fmt.Errorf("fault: connection dropped"), true
	})
	// Keep serving until every fault has answered its requests.
	deadline := time.Now().Add(2 * time.Minute)
	for dropped.Load() < 5 || appended.Hits() < 5 || refused.Hits() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("faults hit after 2 minutes: %d dropped, %d errors after append, %d refused; want 5 each", dropped.Load(), appended.Hits(), refused.Hits())
		}
		l.awaitAnswered(t, l.answered()+1)
	}
	ended := time.Now()
	l.awaitAnswered(t, l.answered()+20)
	ids := l.finish()
	report(t, c.measure(faultResult{Fault: "broker produce errors (5 after append, 5 refused) and 5 dropped connections"}, ids, ended))
}

// ingest dies (SIGKILL) after inserting a round and before committing its
// offsets: a new ingest gets the round again, and FINAL collapses it.
func TestFaultIngestKilledBetweenInsertAndCommit(t *testing.T) {
	labtest.Heavy(t)
	slow(t)
	c := newCampaign(t, ingesttest.ClickHouse(t))
	c.startServeInProcess()
	l := c.startLoad(4, 0)
	l.awaitAnswered(t, 100)
	cmd := c.startIngestProcess()
	cl := c.br.Cluster()
	killed := make(chan struct{})
	cl.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if req.(*kmsg.OffsetCommitRequest).Group != c.group {
			cl.KeepControl()
			return nil, nil, false
		}
		_ = cmd.cmd.Process.Kill() // the round is in ClickHouse, its offsets are not committed
		close(killed)
		return nil, fmt.Errorf("fault: ingest killed"), true
	})
	<-killed
	inserted := c.chInt("SELECT count() FROM decisions")
	if inserted == 0 {
		t.Fatalf("no rows inserted before the first commit")
	}
	_ = cmd.wait()
	restarted := time.Now()
	c.startIngest()
	l.awaitAnswered(t, l.answered()+20)
	ids := l.finish()
	r := c.measure(faultResult{Fault: "ingest SIGKILLed between insert and commit"}, ids, restarted)
	r.Note = fmt.Sprintf("the killed ingest had inserted %d rows, none committed; merges may collapse the copies before they are counted", inserted)
	report(t, r)
}

// ClickHouse is killed (SIGKILL) while ingest inserts, and restarted on the
// same ports and data.
func TestFaultClickHouseKilledMidInsert(t *testing.T) {
	labtest.Heavy(t)
	slow(t)
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := chlocal.Start(ctx, chlocal.Config{Dir: dir})
	if err != nil {
		t.Fatalf("start clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	conn, _, err := ingest.Open(ctx, srv.DSN("faults")) // the database the poll below reads
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	conn.Close()
	db := &ingesttest.DB{Addr: srv.Addr, HTTPURL: srv.HTTPURL, Database: "faults"}
	c := newCampaign(t, db)
	c.startServeInProcess()
	c.startIngest()
	l := c.startLoad(4, 0)
	// Mid-insert: rows are arriving round after round.
	deadline := time.Now().Add(2 * time.Minute)
	for c.chInt("SELECT count() FROM decisions") < 100 {
		if time.Now().After(deadline) {
			t.Fatal("fewer than 100 rows in 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Kill()
	l.awaitAnswered(t, l.answered()+100) // served while ClickHouse is down
	_, tcpPort, _ := net.SplitHostPort(srv.Addr)
	u, _ := url.Parse(srv.HTTPURL)
	var tcp, httpPort int
	fmt.Sscan(tcpPort, &tcp)
	fmt.Sscan(u.Port(), &httpPort)
	srv2, err := chlocal.Start(ctx, chlocal.Config{Dir: dir, TCPPort: tcp, HTTPPort: httpPort})
	if err != nil {
		t.Fatalf("restart clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = srv2.Stop(context.Background()) })
	back := time.Now()
	l.awaitAnswered(t, l.answered()+50)
	ids := l.finish()
	report(t, c.measure(faultResult{Fault: "ClickHouse SIGKILLed mid-insert and restarted"}, ids, back))
}

// serve gets SIGTERM under load: it drains, flushes its producer and loses
// nothing it answered.
func TestFaultServeSIGTERMUnderLoad(t *testing.T) {
	labtest.Heavy(t)
	t.Parallel()
	c := newCampaign(t, ingesttest.ClickHouse(t))
	cmd := c.startServeProcess()
	c.startIngest()
	l := c.startLoad(8, 0)
	l.awaitAnswered(t, 200)
	if err := cmd.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.wait()
	stopped := time.Now()
	ids := l.finish()
	if err != nil {
		t.Errorf("serve after SIGTERM: %v, want exit 0", err)
	}
	report(t, c.measure(faultResult{Fault: "serve SIGTERM under load (drain)"}, ids, stopped))
}

// serve gets SIGKILL under load: what its producer held in memory is lost,
// bounded by its queue, and the campaign measures how much.
func TestFaultServeSIGKILLUnderLoad(t *testing.T) {
	labtest.Heavy(t)
	t.Parallel()
	c := newCampaign(t, ingesttest.ClickHouse(t))
	cmd := c.startServeProcess()
	c.startIngest()
	l := c.startLoad(8, 0)
	l.awaitAnswered(t, 200)
	_ = cmd.cmd.Process.Kill()
	_ = cmd.wait()
	killed := time.Now()
	ids := l.finish()
	// Everything answered and not yet acknowledged by the broker was in
	// serve's memory: the producer queue (65536 events by default) and the
	// write in flight. In practice that is one linger window (200 ms) of
	// events.
	r := c.measure(faultResult{Fault: "serve SIGKILL under load", Bound: 65536}, ids, killed)

	// Never silent: the next serve on the same data dir reports the unclean
	// stop and how many events were in memory shortly before it.
	var stderr syncBuffer
	c.startServeProcessLogging(&stderr)
	if !strings.Contains(stderr.String(), "did not stop cleanly") {
		t.Errorf("serve restarted after SIGKILL did not report it; stderr:\n%s", stderr.String())
	}
	r.Note = "reported at the next start: " + firstLine(stderr.String(), "did not stop cleanly")
	report(t, r)
}

func firstLine(s, containing string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, containing) {
			return line
		}
	}
	return ""
}

// mountTinyDisk mounts a tmpfs of size bytes at dir until the test ends: a
// disk that fills up. It needs root (CAP_SYS_ADMIN); without it the test is
// skipped and says so.
func mountTinyDisk(t *testing.T, dir string, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("disk-full faults need a tmpfs mount, which needs root: mount: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// metric reads one sample of serve's /metrics (on its admin listener), 0
// when absent.
func (c *campaign) metric(name string) int {
	c.t.Helper()
	resp, err := http.Get(c.adminURL + "/metrics")
	if err != nil {
		c.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /metrics: %s", resp.Status) // not a silent 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return int(f)
		}
	}
	return 0
}

// The spool's disk fills up while the broker is away: what the spool cannot
// take stays in serve's memory (routelab_events_held), retried, and reaches
// the broker when it returns. Nothing is dropped.
func TestFaultSpoolDiskFull(t *testing.T) {
	labtest.Heavy(t)
	slow(t)
	c := newCampaign(t, ingesttest.ClickHouse(t))
	mountTinyDisk(t, c.serveDir, 256<<10)
	c.startServeInProcess()
	c.startIngest()
	l := c.startLoad(4, 0)
	l.awaitAnswered(t, 20)
	c.stopBroker()
	dropped := func() int {
		n := 0
		for _, reason := range []string{"queue_full", "spool_io", "encode", "too_large", "rejected", "closed"} {
			n += c.metric(`routelab_events_dropped_total{reason="` + reason + `"}`)
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for c.metric("routelab_events_held") == 0 && dropped() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no event held in memory after 2 minutes (%d answered)", l.answered())
		}
		l.awaitAnswered(t, l.answered()+20)
	}
	l.awaitAnswered(t, l.answered()+50) // served while events wait in memory
	inMemory, held, spooled := c.metric("routelab_events_queue_depth"), c.metric("routelab_events_held"), c.metric("routelab_events_spool_events")
	c.startBroker()
	back := time.Now()
	l.awaitAnswered(t, l.answered()+50)
	ids := l.finish()
	r := c.measure(faultResult{Fault: "spool disk full (256 KiB tmpfs) while the broker is down"}, ids, back)
	d := dropped()
	r.Note = fmt.Sprintf("when the broker returned serve had %d events (all types) spooled and %d in memory, %d of them refused by the full spool; %d dropped", spooled, inMemory, held, d)
	if d != 0 {
		t.Errorf("serve dropped %d events, want 0", d)
	}
	report(t, r)
}

// The blob store's disk is full: sampled images cannot be stored, which is
// logged and leaves the request and its events alone.
func TestFaultBlobDiskFull(t *testing.T) {
	labtest.Heavy(t)
	t.Parallel()
	c := newCampaign(t, ingesttest.ClickHouse(t))
	c.sampleRate = "1"
	mountTinyDisk(t, filepath.Join(c.serveDir, "blobs"), 64<<10)
	c.startServeInProcess()
	c.startIngest()
	l := c.startLoad(4, 100)
	l.awaitAnswered(t, 100)
	ended := time.Now()
	ids := l.finish()
	r := c.measure(faultResult{Fault: "blob disk full (64 KiB tmpfs), every output sampled"}, ids, ended)
	sampled := c.chInt("SELECT countIf(sampled = 1) FROM decisions FINAL")
	r.Note = fmt.Sprintf("%d of %d decisions sampled before the disk filled; the rest served unsampled", sampled, r.Rows)
	report(t, r)
}
