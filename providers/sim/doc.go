// Package sim is the simulated world that stands in for real image models on
// a machine with no internet, and the ground truth of the lab. The world
// (world*.go) knows, for each catalog model, its cost, latency, error rates
// and hidden success probability by task; the Provider here acts out the
// world's verdict on one call like an upstream API would (waits the latency,
// fails with the upstream's error kinds) and returns real PNG bytes drawn by
// Render, visibly degraded when the verdict's quality is low so that
// automated QA and human reviewers see what a weak model would produce.
package sim
