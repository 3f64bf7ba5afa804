// Package server is routelab's data plane over HTTP: the fiber app that
// product apps call (native /v1/images, the OpenAI Images API shape,
// feedback), the admin API (keys, live policy), and the serving flow behind
// them: validate into one request, route with the live policy, call the
// provider with fallbacks, check the bytes, escalate, sample for review, emit
// the decision event without blocking, respond.
//
// Everything it needs from other parts (the router, providers, automated QA,
// the event producer, the key store, the blob store, experiment assignment)
// comes in as a small interface declared here, so the package can be tested
// with real listeners and doubles, and wired in cmd/routelab.
//
// State that lives in one replica's memory (rate-limit buckets, daily cap
// counters, provider concurrency slots, idempotency records, edit-chain
// state, the reference cache) is per replica: N replicas allow N times the
// configured rate and concurrency. See docs/serving.md.
package server
