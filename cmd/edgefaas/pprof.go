package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
)

// startProfiler serves Go's profiler on $EDGEFAAS_PPROF (e.g.
// 127.0.0.1:6060) when it is set: a diagnostic for performance work, off by
// default and never on the API's address.
func startProfiler(log *slog.Logger) {
	addr := os.Getenv("EDGEFAAS_PPROF")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		log.Warn("profiler listening (EDGEFAAS_PPROF)", "addr", addr, "err", http.ListenAndServe(addr, mux))
	}()
}
