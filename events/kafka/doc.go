// Package kafka is routelab's Kafka adapter: the events vocabulary
// (events/) carried over the Kafka protocol with segmentio/kafka-go. It
// holds the Producer (bounded queue, batched writes, an on-disk spool while
// the broker is away), topic creation (EnsureTopics) and ControlLog, the
// follower of a compacted control-plane topic. Domain packages import
// events only; this package is linked by the processes that talk to a
// broker (serve, console, ingest, the CLI).
package kafka
