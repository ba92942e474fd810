// Package bench is edgefaas's benchmark suite: the FunLess paper's
// SeBS-derived workloads (sleep, server-reply, matrixmult, network, a hello
// memory run) plus throughput, cold start and a sustained run, measured
// against a real cluster started from the built binary and, in the same
// run, against two baselines: the same function bodies in a plain Go
// net/http server (native) and the same .wasm invoked in a loop through
// wazero in this process (in-process).
//
// The load generator is closed loop over keep-alive connections and keeps
// the raw latency of every request (no coordinated-omission correction).
// Every failed or timed-out request is counted. Run() writes report.md,
// results.json and PNG plots into a results folder. cmd/edgefaas-bench is
// the command `make bench` runs; TestQuick runs the --quick mode.
//
// All traffic stays on 127.0.0.0/8, every loop is bounded, and every
// process the suite starts is stopped before Run returns.
package bench
