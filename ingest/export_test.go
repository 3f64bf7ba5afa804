package ingest

// DecodeEvent exposes decodeEvent to the external tests.
var DecodeEvent = decodeEvent
