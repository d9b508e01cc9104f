package cni

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/klog/v2"
)

// outcome labels of kovn_cni_requests_total.
const (
	resultOK      = "ok"
	resultError   = "error"
	resultTimeout = "timeout"
)

type handlerOutcome struct {
	result *types100.Result
	err    error
}

// handle runs one request under its deadline and turns the outcome into a
// Response. It answers at the deadline even if the handler ignores its
// context; the abandoned handler keeps the container's lock until it
// returns, so a DEL after a timed-out ADD cannot undo it halfway.
func (s *Server) handle(parent context.Context, req *Request) *Response {
	start := time.Now()
	timeout := s.timeout
	if req.Command == CommandAdd {
		timeout = s.addTimeout
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()

	var out handlerOutcome
	unlock, err := s.locks.lock(ctx, req.ContainerID)
	if err != nil {
		out.err = err
	} else {
		done := make(chan handlerOutcome, 1)
		go func() {
			defer unlock()
			done <- s.dispatch(ctx, req)
		}()
		select {
		case out = <-done:
		case <-ctx.Done():
			out.err = ctx.Err()
		}
	}

	resp, label := s.toResponse(req, out, timeout)
	elapsed := time.Since(start)
	s.metrics.observe(req.Command, label, elapsed)
	logKV := []any{"command", req.Command, "pod", req.PodKey(), "podUID", req.PodUID,
		"containerID", req.ContainerID, "ifName", req.IfName, "duration", elapsed, "result", label}
	if resp.Error != nil {
		klog.InfoS("CNI request failed", append(logKV, "code", resp.Error.Code, "err", resp.Error.Error())...)
	} else {
		klog.InfoS("CNI request", logKV...)
	}
	return resp
}

// dispatch calls the handler, turning a panic into an error: the handler
// runs outside net/http's goroutine, where a panic would kill kovn-node.
func (s *Server) dispatch(ctx context.Context, req *Request) (out handlerOutcome) {
	defer func() {
		if p := recover(); p != nil {
			klog.ErrorS(nil, "CNI handler panicked", "request", req.String(), "panic", p)
			out = handlerOutcome{err: fmt.Errorf("kovn-node CNI handler panicked: %v", p)}
		}
	}()
	switch req.Command {
	case CommandAdd:
		out.result, out.err = s.handler.Add(ctx, req)
		if out.err == nil && out.result == nil {
			out.err = errors.New("kovn-node returned no result for ADD")
		}
	case CommandDel:
		out.err = s.handler.Del(ctx, req)
	case CommandCheck:
		out.err = s.handler.Check(ctx, req)
	case CommandStatus:
		out.err = s.handler.Status(ctx)
	case CommandGC:
		if gc, ok := s.handler.(GCHandler); ok {
			out.err = gc.GC(ctx, req)
		}
	default:
		out.err = types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("unknown CNI command %q", req.Command), "")
	}
	return out
}

func (s *Server) toResponse(req *Request, out handlerOutcome, timeout time.Duration) (*Response, string) {
	if errors.Is(out.err, context.DeadlineExceeded) {
		// 11 invites the runtime to retry: what we waited for (the pod's
		// annotation, ovn-controller binding the port) is usually on its way.
		return &Response{Error: types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("kovn-node: %s timed out after %s", req, timeout), "")}, resultTimeout
	}
	if out.err == nil {
		if req.Command != CommandAdd {
			return &Response{}, resultOK
		}
		return &Response{Result: out.result}, resultOK
	}
	cerr := asCNIError(out.err, types.ErrInternal)
	if req.Command == CommandStatus {
		cerr = asCNIError(out.err, types.ErrPluginNotAvailable)
	}
	// The spec wants DEL of something already gone to succeed.
	if req.Command == CommandDel && cerr.Code == types.ErrUnknownContainer {
		return &Response{}, resultOK
	}
	return &Response{Error: cerr}, resultError
}

// asCNIError keeps a *types.Error's code, and gives other errors code.
func asCNIError(err error, code uint) *types.Error {
	var cerr *types.Error
	if errors.As(err, &cerr) {
		return cerr
	}
	return types.NewError(code, err.Error(), "")
}
