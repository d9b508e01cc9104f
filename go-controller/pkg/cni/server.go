package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// Handler does the node-side work. Return a *types.Error to choose the CNI
// code the runtime sees; any other error becomes ErrInternal (999), or
// ErrPluginNotAvailable (50) from Status. Del must be idempotent; a Del
// that finds nothing may return nil or an ErrUnknownContainer (3) error,
// both of which reach the runtime as success. ctx ends at the command's
// deadline; by then the runtime has been told the command failed, so an ADD
// still running must roll back rather than finish.
type Handler interface {
	Add(ctx context.Context, req *Request) (*types100.Result, error)
	Del(ctx context.Context, req *Request) error
	Check(ctx context.Context, req *Request) error
	Status(ctx context.Context) error
}

// GCHandler is optional: a Handler that also implements it receives GC with
// req.NetConf.ValidAttachments; without it GC succeeds doing nothing.
type GCHandler interface {
	GC(ctx context.Context, req *Request) error
}

// Endpoint is the one HTTP path the server answers (POST, JSON Request in,
// JSON Response out).
const Endpoint = "/cni"

// ServerOptions tune a Server; the zero value is usable.
type ServerOptions struct {
	// AddTimeout bounds ADD (default 60s): a runtime blocked on a sandbox
	// must get an answer it can retry, never a hang.
	AddTimeout time.Duration
	// Timeout bounds every other command (default 30s).
	Timeout time.Duration
	// Registerer receives the request metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Metrics, if set, are used instead of registering new ones.
	Metrics *Metrics
}

// Default timeouts; a plugin's own deadline (DefaultClientTimeout) must
// be longer so the server's more precise error is what the runtime sees.
const (
	DefaultAddTimeout = 60 * time.Second
	DefaultTimeout    = 30 * time.Second
	maxRequestBytes   = 4 << 20
)

// Server answers CNI requests on a root-only unix socket.
type Server struct {
	socketPath string
	handler    Handler
	addTimeout time.Duration
	timeout    time.Duration
	metrics    *Metrics
	locks      *containerLocks

	mu       sync.Mutex
	listener net.Listener
}

// NewServer makes a Server; nothing is opened until Listen or Serve.
func NewServer(socketPath string, h Handler, opts ServerOptions) *Server {
	s := &Server{
		socketPath: socketPath,
		handler:    h,
		addTimeout: opts.AddTimeout,
		timeout:    opts.Timeout,
		metrics:    opts.Metrics,
		locks:      newContainerLocks(),
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(opts.Registerer)
	}
	if s.addTimeout <= 0 {
		s.addTimeout = DefaultAddTimeout
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	return s
}

// Listen opens the socket. It is separate from Serve so kovn-node can
// write the CNI configuration only once the socket accepts connections —
// the runtime counts the network as ready as soon as that file appears.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return nil
	}
	dir := filepath.Dir(s.socketPath)
	// A pod that could connect could plumb or delete any pod's network.
	// The directory's 0700 also closes the window between bind (mode from
	// the umask) and the chmod below.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cni socket directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("cni socket directory: %w", err)
	}
	if err := removeStaleSocket(s.socketPath); err != nil {
		return err
	}
	l, err := net.Listen("unix", s.socketPath)
	if err != nil {
		return fmt.Errorf("listen on cni socket: %w", err)
	}
	if err := os.Chmod(s.socketPath, 0o600); err != nil {
		_ = l.Close()
		return fmt.Errorf("cni socket permissions: %w", err)
	}
	s.listener = l
	return nil
}

// removeStaleSocket clears what a crashed kovn-node left behind, but
// refuses to take the socket from a live one or to delete a non-socket.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cni socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("cni socket path %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("cni socket %s is in use: another kovn-node is running", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale cni socket: %w", err)
	}
	return nil
}

// Serve listens (if Listen was not called) and answers requests until ctx
// ends, then stops accepting, lets requests in flight finish (bounded by
// their own timeouts) and removes the socket. It returns nil after ctx
// ends. A Server serves once.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Endpoint, s.serveHTTP)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.listener) }()
	klog.InfoS("CNI server listening", "socket", s.socketPath)

	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), s.addTimeout)
		err = hs.Shutdown(shutdownCtx)
		cancel()
	}
	_ = os.Remove(s.socketPath)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeResponse(w, http.StatusMethodNotAllowed, &Response{Error: types.NewError(types.ErrInternal, "kovn-node CNI endpoint accepts POST only", "")})
		return
	}
	req := &Request{}
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(req)
	if err == nil {
		req.NetConf, err = ParseNetConf(req.Config)
	}
	if err != nil {
		writeResponse(w, http.StatusBadRequest, &Response{Error: asCNIError(err, types.ErrDecodingFailure)})
		return
	}
	writeResponse(w, http.StatusOK, s.handle(r.Context(), req))
}

func writeResponse(w http.ResponseWriter, status int, resp *Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		klog.ErrorS(err, "cannot write CNI response")
	}
}
