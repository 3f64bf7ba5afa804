package events

// Control-plane topics added after the first contract: API keys (serve) and
// console users. Like policies and experiments they are compacted.
const (
	TopicKeys  = "routelab.keys"
	TopicUsers = "routelab.users"
)

// DefaultPartitions is how many partitions the data topics get when routelab
// creates them: enough for a handful of ingest consumers to share the load.
const DefaultPartitions = 6

// DataTopics are the event topics: partitioned by request id, deleted by
// retention, consumed by ingest.
func DataTopics() []string {
	return []string{TopicDecisions, TopicQA, TopicSignals, TopicReviews, TopicAudit, TopicDeadLetter}
}

// ControlTopics are the control-plane topics: one partition so a reader sees
// one total order, cleanup.policy=compact so the last record per key is kept
// for ever and a reader can rebuild the state by reading to the end.
func ControlTopics() []string {
	return []string{TopicPolicies, TopicExperiments, TopicKeys, TopicUsers}
}
