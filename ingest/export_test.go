package ingest

// DecodeEvent exposes decodeEvent to the external tests.
var DecodeEvent = decodeEvent

// AlreadyDone exposes alreadyDone to the external tests.
var AlreadyDone = alreadyDone
