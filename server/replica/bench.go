package replica

import (
	"log/slog"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server"
)

// BenchOptions is the replica `routelab bench serve` measures (and
// BenchmarkServeHandler), on 127.0.0.1 with events to broker: simulated
// models with zero latency and no upstream errors, so what is left is
// routelab; key seeded for tenant "bench". The limits a production replica
// checks on every request are there, a per-key rate and a daily cap, but
// never reached; with Options.StateStore set they (and the edit chain) go
// through the shared store.
func BenchOptions(broker, dir, key string, logger *slog.Logger) Options {
	return Options{
		Addr: "127.0.0.1:0", Brokers: []string{broker}, DataDir: dir, Policy: "rules",
		Sim: sim.Options{LatencyScale: 0, Variants: 1}, SeedKey: key, SeedTenant: "bench",
		CatalogFix: func(c *router.Catalog) {
			for i := range c.Models {
				c.Models[i].ErrorRate, c.Models[i].RateLimitRate = 0, 0
			}
		},
		Logger:  logger,
		Server:  server.Config{RatePerSec: 1e6, RateBurst: 1 << 30},
		Gateway: gateway.Config{ProviderConcurrency: 4096, ProviderQueue: 4096, DailyCap: 1 << 40},
	}
}
