package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// DefaultClientTimeout is the plugin's own deadline: longer than the
// server's DefaultAddTimeout so the server's timeout answer wins, while
// still ending a hang if kovn-node stops answering.
const DefaultClientTimeout = DefaultAddTimeout + 15*time.Second

// Forward sends one invocation to kovn-node at socketPath and returns its
// Response. The error is always a *types.Error (returned as error) and
// means the request did not get an answer; an answer that is a CNI error
// arrives in Response.Error.
func Forward(socketPath string, args *skel.CmdArgs, command string, timeout time.Duration) (*Response, error) {
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	body, err := json.Marshal(NewRequest(command, args))
	if err != nil {
		return nil, types.NewError(types.ErrInternal, "cannot encode request for kovn-node", err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		DisableKeepAlives: true,
	}}
	// The host part is ignored: the transport always dials socketPath.
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://kovn-node"+Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, types.NewError(types.ErrInternal, "cannot build request for kovn-node", err.Error())
	}
	hreq.Header.Set("Content-Type", "application/json")
	hresp, err := client.Do(hreq)
	if err != nil {
		return nil, transportError(socketPath, command, timeout, err)
	}
	defer func() { _ = hresp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, maxRequestBytes))
	if err != nil {
		return nil, transportError(socketPath, command, timeout, err)
	}
	resp := &Response{}
	if err := json.Unmarshal(data, resp); err != nil {
		return nil, types.NewError(types.ErrInternal,
			fmt.Sprintf("kovn-node sent an unreadable answer (HTTP %d)", hresp.StatusCode), err.Error())
	}
	if hresp.StatusCode != http.StatusOK && resp.Error == nil {
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("kovn-node answered HTTP %d", hresp.StatusCode), string(data))
	}
	if resp.Error == nil && command == CommandAdd && resp.Result == nil {
		return nil, types.NewError(types.ErrInternal, "kovn-node answered ADD without a result", "")
	}
	if resp.Result != nil {
		if err := checkResult(resp.Result); err != nil {
			return nil, types.NewError(types.ErrInternal, "kovn-node answered with a result the runtime could not read", err.Error())
		}
	}
	return resp, nil
}

// checkResult rejects a result the plugin could not hand on: one claiming a
// version types100.Result does not implement (converting it panics), or
// one that does not read back once printed (an IP or route without an
// address prints as "<nil>").
func checkResult(r *types100.Result) error {
	c := *r
	if c.CNIVersion == "" {
		c.CNIVersion = types100.ImplementedSpecVersion // as GetAsVersion assumes
	}
	data, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	_, err = types100.NewResult(data)
	return err
}

// transportError says why no answer came, in terms an operator reading
// the runtime's log can act on. Most cases are 11 (try again later): the
// runtime retries, and kovn-node may be starting or restarting.
func transportError(socketPath, command string, timeout time.Duration, err error) *types.Error {
	code, msg := types.ErrTryAgainLater, ""
	switch {
	case errors.Is(err, syscall.ENOENT):
		msg = fmt.Sprintf("kovn-node is not running on this node (socket %s not found)", socketPath)
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("kovn-node is not running on this node (socket %s refuses connections)", socketPath)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		code = types.ErrIOFailure // a retry will not help
		msg = fmt.Sprintf("cannot open kovn-node socket %s: permission denied (the plugin must run as root)", socketPath)
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("kovn-node did not answer %s within %s (socket %s)", command, timeout, socketPath)
	default:
		msg = fmt.Sprintf("cannot reach kovn-node on socket %s", socketPath)
	}
	return types.NewError(code, msg, err.Error())
}
