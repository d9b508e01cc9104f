package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// NewRegistry is a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve answers /metrics, /healthz (the process lives) and /readyz (ready
// says so; nil means always) on addr until ctx ends. A failure to listen
// is logged, not fatal: the component works without its metrics.
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, ready func() bool) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		klog.ErrorS(err, "metrics server", "address", addr)
		return
	}
	ServeListener(ctx, l, reg, ready)
}

// ServeListener is Serve on a listener the caller opened (a test's
// 127.0.0.1:0); it closes l when ctx ends and returns then.
func ServeListener(ctx context.Context, l net.Listener, reg *prometheus.Registry, ready func() bool) {
	srv := &http.Server{Handler: Handler(reg, ready), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		klog.ErrorS(err, "metrics server", "address", l.Addr().String())
	}
}

// Handler answers /metrics, /healthz and /readyz.
func Handler(reg *prometheus.Registry, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil && !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
