// Package redisstate is the state serve replicas share, in a
// Redis-protocol store (Redis or Valkey, one node or a primary with
// replicas; not Redis Cluster: an edit chain's node and its image are read
// by one script): daily caps and spend budgets, rate limits and vendor
// budgets, edit chains and Idempotency-Key records. It implements the
// interfaces the gateway (CapStore, SpendStore, Limiter, ChainStore) and
// the server (IdempotencyStore) define, every read-modify-write as one Lua
// script or MULTI, so replicas never race.
//
// Keys, all under Options.Prefix (default "rl:"):
//
//	cap:DAY:KIND:...   daily counter (INCRBY), expires an hour after its UTC day
//	spend:PERIOD:day:TENANT, spend:PERIOD:month:TENANT
//	                   spend in µ$ (INCRBY) of a UTC day (Unix days) or month (YYYYMM),
//	                   estimates of requests in flight included; expires an hour after its period
//	spendalert:PERIOD:KIND:TENANT  set (NX) by the settle that first reaches 80% of the budget
//	rate:KEY           GCRA theoretical arrival time in µs of the store's clock, expires when idle
//	chain:ID           edit-chain node: 'O' + JSON naming the replica that holds the image
//	                   (serve: other replicas fetch it from that one's admin listener), or
//	                   'R' + the image's SHA-256 + JSON (the image in img:), ChainTTL
//	img:SHA256         that image's bytes, content-addressed, ChainTTL
//	idem:SHA256        Idempotency-Key record: F+sum+token while in flight (InFlightTTL),
//	                   D+sum+response when done (IdempotencyTTL)
//
// A Store watches its connection (PING every second, and every failed
// operation): while the store is down, operations fail at once with
// gateway.ErrStateUnavailable instead of waiting on timeouts, and the
// callers take their fallbacks.
package redisstate
