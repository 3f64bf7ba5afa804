package loadgen_test

import (
	"context"
	"image/color"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/server"
	"github.com/routelab/routelab/server/client"
	"github.com/routelab/routelab/server/loadgen"
	"github.com/routelab/routelab/server/servertest"
)

// mustServe runs a real server and gateway (test doubles for models, an
// experiments registry in process, no rate limit: loadgen sends as fast as
// it is answered) and returns its API and admin URLs and the recording
// producer.
func mustServe(t *testing.T, gw gateway.Config) (api, admin string, _ *gatewaytest.Producer) {
	t.Helper()
	gw.SampleRate = -1
	keys := server.NewMemKeys()
	if _, err := keys.Insert(context.Background(), "acme", "test", "rl_loadgen"); err != nil {
		t.Fatal(err)
	}
	prod := gatewaytest.NewProducer(1 << 16)
	mem := experiments.NewMemLog()
	reg := experiments.NewRegistry(mem, nil, nil)
	mem.Bind(reg.Apply)
	metrics := prometheus.NewRegistry()
	g := gateway.New(gw, gateway.Deps{
		Policy:    &gatewaytest.Router{Model: "fast", Chain: []string{"strong"}, Version: "p1"},
		Providers: map[string]providers.Provider{"fast": &gatewaytest.Provider{Model: "fast", Color: color.NRGBA{200, 0, 0, 255}}, "strong": &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}}},
		QA:        passQA{},
		Events:    prod,
		Assigner:  gateway.NewExperimentAssigner(reg.Assigner, nil),
		Registry:  metrics,
	})
	srv := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), server.Config{AdminToken: "adm", RatePerSec: math.Inf(1), RateBurst: 1 << 30}, server.Deps{
		Gateway:     g,
		Catalog:     []server.Model{{Name: "fast"}, {Name: "strong"}},
		Events:      prod,
		Keys:        keys,
		Registry:    metrics,
		Experiments: reg,
	})
	url, adminURL := servertest.Start(t, srv, time.Minute)
	return url, adminURL, prod
}

// passQA passes every image without decoding it: the load generator only
// needs serve's answers, and decoding megapixel PNGs per request is what
// would make these tests slow under -race.
type passQA struct{}

func (passQA) Check(context.Context, providers.Image, gateway.QASpec) qa.Result {
	return qa.Result{Pass: true, Score: 1, Checks: []events.QACheck{{Name: "format", Pass: true, Value: 1}}}
}

func mustItems(t *testing.T) []datasets.WorkItem {
	t.Helper()
	items, err := datasets.LoadOrGenerate("", 1, 300)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// Users keep their arm: loadgen's user draw is the experiment unit, and
// every decision carries the arm its user is in.
func TestRunWithExperiment(t *testing.T) {
	url, adminURL, prod := mustServe(t, gateway.Config{})
	ctx := context.Background()
	spec, err := os.ReadFile("../../datasets/experiments/ab-policies.json")
	if err != nil {
		t.Fatal(err)
	}
	adm := client.New(adminURL, "adm", "test")
	s, err := adm.CreateExperiment(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Act(ctx, s.ID, "start", "test", 0); err != nil {
		t.Fatal(err)
	}
	sum, err := loadgen.Run(ctx, loadgen.Config{Target: url, Key: "rl_loadgen", Items: mustItems(t), Users: 30, Feedback: 0.2, Seed: 1, Requests: 150, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 150 || sum.OK != 150 || sum.UsersSeen > 30 || sum.UsersSeen < 25 {
		t.Fatalf("summary = %+v", sum)
	}
	control, treatment := sum.Arms[s.ID+":control"], sum.Arms[s.ID+":treatment"]
	if control+treatment != 150 || control == 0 || treatment == 0 {
		t.Fatalf("arms = %v", sum.Arms)
	}
	armOf := map[string]string{}
	decisions := 0
	for _, e := range prod.Events() {
		d, ok := e.Value.(*events.Decision)
		if !ok {
			continue
		}
		decisions++
		if len(d.Arms) != 1 || d.Arms[0].Unit != d.Unit {
			t.Fatalf("decision arms = %+v", d.Arms)
		}
		if prev, ok := armOf[d.Unit]; ok && prev != d.Arms[0].Arm {
			t.Fatalf("user %s in %s and %s", d.Unit, prev, d.Arms[0].Arm)
		}
		armOf[d.Unit] = d.Arms[0].Arm
	}
	if decisions != 150 {
		t.Fatalf("%d decisions, want 150", decisions)
	}
	if sum.Feedback == 0 {
		t.Errorf("no feedback sent")
	}
}

// Edit chains outlive serve's chain memory in a long run; loadgen restarts
// a chain whose parent serve forgot instead of counting an error.
func TestRunRestartsForgottenChains(t *testing.T) {
	url, _, _ := mustServe(t, gateway.Config{ChainSize: 2})
	sum, err := loadgen.Run(context.Background(), loadgen.Config{Target: url, Key: "rl_loadgen", Items: mustItems(t), Users: 20, Seed: 1, Requests: 150, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 150 || sum.Errors != 0 || sum.ChainRestarts == 0 {
		t.Fatalf("summary = %+v, want 150 requests, no errors, some chains restarted", sum)
	}
}

// Errors are counted by the code serve answered with.
func TestRunCountsErrorCodes(t *testing.T) {
	url, _, _ := mustServe(t, gateway.Config{})
	sum, err := loadgen.Run(context.Background(), loadgen.Config{Target: url, Key: "rl_wrong", Items: mustItems(t), Users: 5, Seed: 1, Requests: 20, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 20 || sum.ErrorCodes["unauthorized"] != 20 {
		t.Errorf("with a wrong key: errors %d, codes %v; want 20 unauthorized", sum.Errors, sum.ErrorCodes)
	}
	var text strings.Builder
	sum.WriteText(&text)
	if !strings.HasPrefix(text.String(), "20 requests in ") || !strings.Contains(text.String(), "\n  error unauthorized         20\n") {
		t.Errorf("WriteText:\n%s", text.String())
	}
}
