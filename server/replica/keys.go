package replica

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/server"
)

// DefaultKeysMaxStale is how old serve's view of the keys topic may grow
// before the replica reports not-ready: the longest a key revoked on
// another replica can keep working here while the replica stays in
// rotation.
const DefaultKeysMaxStale = 30 * time.Second

// followKeys keeps keys in step with the keys topic. A record installs its
// key (a revocation is a record with revoked set). A tombstone removes the
// key: once compaction has dropped the revocation record, the tombstone is
// all a lagging replica gets to see. A record that does not decode to its
// key also removes it, so a damaged record fails closed.
func followKeys(kl *kafka.ControlLog, keys *server.MemKeys, logger *slog.Logger) (cancel func()) {
	return kl.Subscribe(func(c control.Change) {
		id, ok := control.APIKeyID(c.Key)
		if !ok {
			return
		}
		if c.Deleted {
			keys.Remove(id)
			return
		}
		var k server.Key
		if err := json.Unmarshal(c.Value, &k); err != nil || k.ID != id {
			logger.Warn("undecodable key record; key removed", "key", c.Key, "offset", c.Offset, "err", err)
			keys.Remove(id)
			return
		}
		keys.Apply(k)
	})
}

// keysFresh is serve's readiness condition on the keys topic: ready while
// the local view of it is at most maxStale old (kafka.ControlLog.Fresh).
func keysFresh(kl *kafka.ControlLog, maxStale time.Duration) func() error {
	return func() error { return kl.Fresh(maxStale) }
}

// controlCheckEvery is how often a control log confirms its view is
// current, given how stale it may grow: often enough that a view that is
// keeping up never looks older than maxStale between checks.
func controlCheckEvery(maxStale time.Duration) time.Duration {
	return min(time.Second, maxStale/4)
}
