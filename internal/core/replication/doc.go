// Package replication is a core group's replicated store: the core's
// state, kept by internal/core/storage in each member's pebble database,
// changed only through a Raft log (hashicorp/raft) that a majority of the
// group has written.
//
// A write becomes a Command (commands.go): one type per storage write,
// carrying everything the write needs from outside the database (the
// record the caller checked, a new record's identity and time), so that
// every member applying it to the same state makes the same change. The
// state machine (FSM, fsm.go) applies a command with the same storage
// method a single core calls, so the compare-and-set of cas.go runs inside
// the state machine: two members racing on one name get one winner. Reads
// stay on the member's own database.
//
// The log and Raft's own state live in a second pebble database
// (LogStore, logstore.go). A snapshot is a pebble checkpoint of the state
// database streamed as a tar (snapshot.go); a member far behind replaces
// its contents with it.
//
// Why Raft and why this engine: docs/RATIONALE.md, "Why a replicated core
// uses Raft".
package replication
