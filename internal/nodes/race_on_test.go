//go:build race

package nodes

// raceDetector: tests that run guests skip under -race (wazero's compiler
// is many times slower there, and two nodes over TCP hit ergo's own race in
// its atom cache); `make race` covers node assembly without them.
const raceDetector = true
