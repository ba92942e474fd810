package wasm

// LogTruncatedMarker is the last log line of an invocation whose logs were
// cut at its log limit; activation records flag such logs.
const LogTruncatedMarker = logTruncated
