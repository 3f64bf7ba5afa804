package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/routelab/routelab/ingest/chlocal"
)

const clickhouseHelp = `Run a local ClickHouse for development and tests: the installed clickhouse-server
binary as a child process with a generated config (data, logs and config under
DATA_DIR/clickhouse, listening on 127.0.0.1 only, user default without password).
A restart on the same --data-dir keeps the data. Runs until Ctrl-C.

routelab dev starts one of these itself; this command is for running ClickHouse
alone (make test starts one for the whole suite and exports its address as
ROUTELAB_TEST_CLICKHOUSE).`

func runClickHouse(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("clickhouse", clickhouseHelp)
	dataDir := fs.String("data-dir", "./.routelab", "routelab data dir; ClickHouse keeps its files under DATA_DIR/clickhouse (env ROUTELAB_DATA_DIR)")
	ports := fs.String("ports", "fixed", `"fixed" uses the address flags; "auto" picks free ports`)
	chAddr := fs.String("clickhouse-addr", "127.0.0.1:19000", "native-protocol listen address; port 0 picks one")
	chHTTPAddr := fs.String("clickhouse-http-addr", "127.0.0.1:18123", "HTTP listen address; port 0 picks one")
	asJSON := fs.Bool("json", false, `print {"clickhouse": ADDR, "clickhouse_http": URL, "data_dir": DIR} on stdout once it answers`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	switch *ports {
	case "fixed":
	case "auto":
		*chAddr, *chHTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	default:
		return fmt.Errorf("--ports %q: want fixed or auto", *ports)
	}
	tcp, err := portOf(*chAddr)
	if err != nil {
		return fmt.Errorf("--clickhouse-addr: %w", err)
	}
	http, err := portOf(*chHTTPAddr)
	if err != nil {
		return fmt.Errorf("--clickhouse-http-addr: %w", err)
	}
	dir := filepath.Join(*dataDir, "clickhouse")
	fmt.Fprintf(env.Stderr, "clickhouse: data-dir=%s clickhouse-addr=%s clickhouse-http-addr=%s\n", dir, *chAddr, *chHTTPAddr)
	s, err := chlocal.Start(ctx, chlocal.Config{Dir: dir, TCPPort: tcp, HTTPPort: http})
	if err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.Marshal(map[string]string{"clickhouse": s.Addr, "clickhouse_http": s.HTTPURL, "data_dir": s.Dir})
		fmt.Fprintln(env.Stdout, string(b))
	} else {
		fmt.Fprintf(env.Stdout, "clickhouse-server on %s (native) and %s (http), started in %v; Ctrl-C to stop\n", s.Addr, s.HTTPURL, s.StartDuration.Round(time.Millisecond))
	}
	select {
	case <-ctx.Done():
	case <-s.Done():
		return fmt.Errorf("clickhouse-server exited unexpectedly; see %s/log", s.Dir)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.Stop(stopCtx)
}
