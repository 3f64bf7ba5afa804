# routelab: `make run` brings the whole stack up locally; `make test` runs the
# whole suite. Both install what is missing first (idempotent).
GO      ?= go
BIN     := bin/routelab
DATA    ?= ./.routelab
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT     := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: all build run test test-heavy bench bench-ingest deps clickhouse redis tesseract gomod browser clean kafka fuzz fuzz-short soak default-policy

all: build

build: gomod
	$(GO) build -o $(BIN) ./cmd/routelab

# deps installs everything the stack and the tests need that is not there yet.
deps: clickhouse redis tesseract gomod

clickhouse:
	@command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || { $(APT) update && $(APT) install -y clickhouse-server clickhouse-client; }

# redis: the shared state store of serve replicas (redisstate); routelab dev
# and the tests run redis-server as a child process, never the system service.
redis:
	@command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || { $(APT) update && $(APT) install -y redis-server; }

# tesseract: the OCR engine of QA's legibility check (evaluator/tesseract),
# with its English data.
tesseract:
	@{ command -v tesseract >/dev/null 2>&1 && tesseract --list-langs 2>/dev/null | grep -qx eng; } || { $(APT) update && $(APT) install -y tesseract-ocr tesseract-ocr-eng; }

# browser: what the console's Playwright tests need (console/e2e): Debian's
# chromium and playwright-core from npm; never a downloaded browser build.
# Also the official OpenAI Node SDK the server's SDK test drives (server/sdk-e2e).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(APT) update && $(APT) install -y chromium; }
	@command -v npm >/dev/null 2>&1 || { $(APT) update && $(APT) install -y nodejs npm; }
	@[ -d console/e2e/node_modules/playwright-core ] || (cd console/e2e && npm ci --no-audit --no-fund)
	@[ -d server/sdk-e2e/node_modules/openai ] || (cd server/sdk-e2e && npm ci --no-audit --no-fund)

gomod:
	@$(GO) mod download

run: deps build
	./$(BIN) dev --data-dir $(DATA)

# default-policy trains the policy `make run` makes live (datasets/policies/
# default.json, epsilon 0.05) in the simulated world, with fixed seeds: a
# workload, the exploring policy's logged decisions on it, a policy trained
# from them, and its evaluation on a held-out workload in a world of another
# seed; the training and evaluation reports go to default.report.txt.
# The logging run has no OCR legibility QA (--text-qa=false): what Tesseract
# reads varies with its version, and the checked-in policy must come out
# the same on any machine. About 5 minutes of CPU on 2 cores.
POLICY_N ?= 20000
default-policy: build
	@mkdir -p $(DATA)/default-policy
	./$(BIN) workload generate --n $(POLICY_N) --seed 11 --out $(DATA)/default-policy/train.jsonl
	./$(BIN) workload generate --n 5000 --seed 12 --out $(DATA)/default-policy/heldout.jsonl
	./$(BIN) sim --policy datasets/policies/explore.json --workload $(DATA)/default-policy/train.jsonl --world-seed 1 --text-qa=false --out $(DATA)/default-policy/logged.jsonl
	{ echo "# make default-policy: routelab policy train on $(POLICY_N) requests (workload seed 11) logged by explore in world seed 1"; \
	  ./$(BIN) policy train --logged $(DATA)/default-policy/logged.jsonl --name default --epsilon 0.05 --out datasets/policies/default.json; \
	  echo; echo "# routelab policy eval on a held-out workload (5000 requests, seed 12), world seed 7"; \
	  ./$(BIN) policy eval --policy datasets/policies/default.json --workload $(DATA)/default-policy/heldout.jsonl --world-seed 7; \
	} > datasets/policies/default.report.txt
	@tail -n 30 datasets/policies/default.report.txt

# kafka runs only the local Kafka-protocol broker (log under $(DATA)/kafka, the
# same one `make run` uses), e.g. to point a separately started serve at it.
kafka: build
	./$(BIN) kafka --data-dir $(DATA)

# One clickhouse-server for the whole suite (scripts/with-clickhouse exports
# ROUTELAB_TEST_CLICKHOUSE; ingest/ingesttest gives each test its own database).
test: deps browser build
	$(GO) vet ./...
	scripts/with-clickhouse $(GO) test -race -count=1 -timeout 20m ./...
	@$(MAKE) --no-print-directory test-heavy
	$(MAKE) fuzz-short

# The heavy tests, marked labtest.Heavy: lab runs of thousands of requests,
# each rendering and QA-checking an image on one goroutine (named TestLab*),
# the fault campaign's process stacks (serve and ingest as child processes
# under load, TestFault*), and QA's comparisons of its PNG and JPEG readers
# with image/png and image/jpeg over hundreds of images. Under -race they
# are a hundredfold slower and race nothing the packages' own tests do not,
# so the race pass skips them and they run here without it.
HEAVY_PKGS := ./lab/... ./jobs/ ./cmd/routelab/ ./providers/sim/ ./evaluator/qa/...
HEAVY_RUN  := ^Test(Lab|Fault)[A-Z]|^Test(PNG|JPEG)WorkMatchesDecode$$|^TestStreamed(PNG|JPEG)Verdicts$$|^TestDecodeDamagedManyCuts$$
test-heavy: build
	scripts/with-clickhouse $(GO) test -count=1 -timeout 20m -run '$(HEAVY_RUN)' $(HEAVY_PKGS)

# Go native fuzz targets, one per decoder of outside bytes (package:target).
# `make test` runs each for FUZZTIME_SHORT, `make fuzz` for FUZZTIME. A
# failing input is written to the package's testdata/fuzz/<target>/, where
# plain `go test` replays it from then on: commit it with the fix.
FUZZ_TARGETS := \
	./server:FuzzNativeJSON ./server:FuzzOpenAIJSON ./server:FuzzMultipart \
	./server:FuzzBase64Reference ./server:FuzzReferenceImage ./evaluator/qa:FuzzDecode ./evaluator/qa:FuzzPNGWork \
	./evaluator/qa/internal/jpegluma:FuzzJPEGLuma \
	./ingest:FuzzDecodeEvent ./router:FuzzParsePolicy ./router:FuzzTargetTexts ./experiments:FuzzParseSpec
FUZZTIME       ?= 60s
FUZZTIME_SHORT ?= 3s
# Minimizing every new interesting input (the default, up to 60 s each)
# would eat a short run whole: a few dozen iterations each.
FUZZMINIMIZE   ?= 50x

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

fuzz: gomod
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg || exit 1; \
	done

# The whole fault campaign (cmd/routelab/faults_test.go), including the
# faults that wait out a consumer-group session; `make test` runs the quick
# ones. Figures go to $(FAULTS_REPORT) as JSON lines (docs/reliability.md).
FAULTS_REPORT ?= faults-report.jsonl
soak: deps build
	ROUTELAB_FAULTS_SLOW=1 ROUTELAB_FAULTS_REPORT=$(abspath $(FAULTS_REPORT)) \
		scripts/with-clickhouse $(GO) test -count=1 -timeout 30m -run '^TestFault' -v ./cmd/routelab/

bench: deps build bench-ingest
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Pipeline throughput vs direct ClickHouse inserts, measured in the same run.
EVENTS ?= 200000
bench-ingest: deps build
	./$(BIN) bench ingest --events $(EVENTS) --json

clean:
	rm -rf bin
