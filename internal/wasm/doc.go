// Package wasm runs edgefaas functions on wazero.
//
// An Engine is the one WebAssembly runtime of a worker process. It compiles
// each function version once (keyed by the sha256 of its code), keeps the
// compiled code on disk so that a restarted worker does not compile again,
// and invokes functions under a sandbox: a memory limit, a wall-clock
// timeout that really stops the guest, bounded input, output and logs, no
// files, no environment, and only the host functions edgefaas provides.
//
// Two calling conventions (ABIs) are supported and detected from a module's
// exports, see [ABI]. Outbound HTTP from a guest is handed to an [Outbound]
// implementation (on a worker, the HTTP-client actor), and blocks only the
// goroutine of that one invocation until it answers.
//
// The package holds no node, actor or storage logic: actors drive it.
package wasm
