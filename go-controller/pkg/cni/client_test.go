package cni

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

func cniError(t *testing.T, err error) *types.Error {
	t.Helper()
	cerr, ok := err.(*types.Error)
	if !ok {
		t.Fatalf("error %T %v is not a *types.Error", err, err)
	}
	return cerr
}

func TestForwardAgentNotRunning(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "cni.sock")
	_, err := Forward(sock, testArgs("c1", fmt.Sprintf(testConf, sock)), CommandAdd, time.Second)
	cerr := cniError(t, err)
	want := fmt.Sprintf("kovn-node is not running on this node (socket %s not found)", sock)
	if cerr.Code != types.ErrTryAgainLater || cerr.Msg != want {
		t.Errorf("got %d %q, want 11 %q", cerr.Code, cerr.Msg, want)
	}

	// A socket file nobody listens on: kovn-node died without cleaning up.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = l.Close()
	_, err = Forward(sock, testArgs("c1", fmt.Sprintf(testConf, sock)), CommandDel, time.Second)
	cerr = cniError(t, err)
	if cerr.Code != types.ErrTryAgainLater || !strings.Contains(cerr.Msg, "kovn-node is not running on this node") {
		t.Errorf("refused socket: %d %q", cerr.Code, cerr.Msg)
	}
}

func TestForwardClientTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := &fakeHandler{add: func(context.Context, *Request) (*types100.Result, error) {
		<-release
		return testResult("10.128.1.5"), nil
	}}
	sock, _ := startServer(t, h, ServerOptions{AddTimeout: 10 * time.Second})
	_, err := Forward(sock, testArgs("c1", fmt.Sprintf(testConf, sock)), CommandAdd, 200*time.Millisecond)
	cerr := cniError(t, err)
	if cerr.Code != types.ErrTryAgainLater || !strings.Contains(cerr.Msg, "did not answer ADD within 200ms") {
		t.Errorf("got %d %q", cerr.Code, cerr.Msg)
	}
}
