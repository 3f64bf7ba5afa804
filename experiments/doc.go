// Package experiments is routelab's experimentation core: the experiment
// spec (a versioned JSON document), deterministic assignment of units to arms
// through layered bucket ranges, canary ramps, and the statistics the
// analysis reports (SRM, two-proportion and Welch intervals, the delta
// method, CUPED, mSPRT always-valid inference, power and multiple-testing
// corrections).
//
// It sits between the control plane (specs arrive through the
// routelab.experiments compacted topic) and the serving path (the server asks
// an Assigner which arms a request falls into and records them in the
// decision event). Everything here is pure: no sockets, no files, no clocks;
// the adapters that store specs, serve the admin API and query ClickHouse live
// in subpackages and in server/ and cmd/.
//
// The assignment hash is specified in docs/assignment.md with test vectors.
package experiments
