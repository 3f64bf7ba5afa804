package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// ROUTELAB_PPROF_ADDR, when set (e.g. 127.0.0.1:6060), serves Go's
// net/http/pprof handlers on that address for the life of the process, so a
// running serve can be profiled as deployed (go tool pprof
// http://ADDR/debug/pprof/profile?seconds=20). It is an environment
// variable rather than a flag so every subcommand gets it without touching
// their flag sets; it binds its own listener, never the API's.
func init() {
	addr := os.Getenv("ROUTELAB_PPROF_ADDR")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "routelab: ROUTELAB_PPROF_ADDR %s: %v\n", addr, err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = http.Serve(ln, mux) }()
}
