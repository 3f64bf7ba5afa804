// Package ingest moves events from Kafka into ClickHouse: a consumer group
// reads batches from the event topics, decodes them, inserts them into one
// ReplacingMergeTree table per event type through clickhouse-go batches with
// explicit column lists, and only then commits the offsets (at-least-once;
// redelivered event_ids collapse, and exact queries use FINAL). Messages it
// cannot decode go to the dead-letter topic with the reason. The schema is a
// set of embedded, versioned migrations applied at start-up; it runs on
// ClickHouse 18.16 and on current releases. See docs/schema.md.
package ingest
