package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

func TestServerSocketIsRootOnly(t *testing.T) {
	sock, _ := startServer(t, &fakeHandler{}, ServerOptions{})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode = %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode = %v, want 0700", di.Mode().Perm())
	}
}

func TestServerReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "cni.sock")
	// What a crashed kovn-node leaves: a socket file nobody listens on.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = l.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := NewServer(sock, &fakeHandler{}, ServerOptions{})
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	go func() { done <- s.Serve(ctx) }()
	resp, err := Forward(sock, testArgs("c1", fmt.Sprintf(testConf, sock)), CommandAdd, 5*time.Second)
	if err != nil || resp.Result == nil {
		t.Fatalf("ADD after replacing stale socket: %v %+v", err, resp)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed on shutdown: %v", err)
	}
}

func TestServerRefusesLiveSocketAndNonSocket(t *testing.T) {
	sock, _ := startServer(t, &fakeHandler{}, ServerOptions{})
	err := NewServer(sock, &fakeHandler{}, ServerOptions{}).Listen()
	if err == nil || !strings.Contains(err.Error(), "another kovn-node") {
		t.Errorf("second server on a live socket: %v", err)
	}
	file := filepath.Join(shortTempDir(t), "not-a-socket")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewServer(file, &fakeHandler{}, ServerOptions{}).Listen(); err == nil {
		t.Error("regular file at the socket path was replaced")
	}
	if data, _ := os.ReadFile(file); string(data) != "keep me" {
		t.Error("regular file at the socket path was touched")
	}
}

func TestServerAnswersConcurrentAdds(t *testing.T) {
	var inFlight, peak atomic.Int32
	h := &fakeHandler{add: func(_ context.Context, req *Request) (*types100.Result, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(50 * time.Millisecond)
		var i int
		_, _ = fmt.Sscanf(req.ContainerID, "c%d", &i)
		return testResult(fmt.Sprintf("10.128.1.%d", 10+i)), nil
	}}
	sock, reg := startServer(t, h, ServerOptions{})
	conf := fmt.Sprintf(testConf, sock)

	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := Forward(sock, testArgs(fmt.Sprintf("c%d", i), conf), CommandAdd, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			if got, want := resp.Result.IPs[0].Address.IP.String(), fmt.Sprintf("10.128.1.%d", 10+i); got != want {
				errs <- fmt.Errorf("c%d got %s, want %s", i, got, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if peak.Load() < 2 {
		t.Errorf("requests were serialized (peak concurrency %d)", peak.Load())
	}
	if got := counterValue(t, reg, CommandAdd, resultOK); got != n {
		t.Errorf("kovn_cni_requests_total{ADD,ok} = %v, want %d", got, n)
	}
}

func TestServerTimeoutAnswersAndSerializesContainer(t *testing.T) {
	release := make(chan struct{})
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	h := &fakeHandler{
		// Ignores ctx on purpose: the server must answer anyway.
		add: func(context.Context, *Request) (*types100.Result, error) {
			<-release
			note("add done")
			return testResult("10.128.1.5"), nil
		},
		del: func(context.Context, *Request) error { note("del"); return nil },
	}
	sock, reg := startServer(t, h, ServerOptions{AddTimeout: 200 * time.Millisecond, Timeout: 5 * time.Second})
	conf := fmt.Sprintf(testConf, sock)

	start := time.Now()
	resp, err := Forward(sock, testArgs("c1", conf), CommandAdd, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil || resp.Error.Code != types.ErrTryAgainLater || !strings.Contains(resp.Error.Msg, "timed out after 200ms") {
		t.Fatalf("ADD past the deadline answered %+v", resp.Error)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout answer took %s", d)
	}
	if got := counterValue(t, reg, CommandAdd, resultTimeout); got != 1 {
		t.Errorf("kovn_cni_requests_total{ADD,timeout} = %v", got)
	}

	// The runtime's DEL for the same container must wait for the abandoned ADD.
	delDone := make(chan *Response, 1)
	go func() {
		r, _ := Forward(sock, testArgs("c1", conf), CommandDel, 5*time.Second)
		delDone <- r
	}()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if r := <-delDone; r == nil || r.Error != nil {
		t.Fatalf("DEL after timed-out ADD: %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "add done,del" {
		t.Errorf("handler order = %v, want the ADD to finish before the DEL starts", order)
	}
}

func TestServerErrorMapping(t *testing.T) {
	h := &fakeHandler{
		add: func(_ context.Context, req *Request) (*types100.Result, error) {
			switch req.ContainerID {
			case "typed":
				return nil, types.NewError(types.ErrInvalidNetworkConfig, "bad config", "detail")
			case "panic":
				panic("boom")
			case "nil":
				return nil, nil
			}
			return nil, errors.New("ovs is down")
		},
		del: func(context.Context, *Request) error {
			return types.NewError(types.ErrUnknownContainer, "pod gone", "")
		},
		status: func(context.Context) error { return errors.New("ovn-controller not connected") },
	}
	sock, _ := startServer(t, h, ServerOptions{})
	conf := fmt.Sprintf(testConf, sock)
	for _, tc := range []struct {
		id, cmd string
		code    uint
		msg     string
	}{
		{"typed", CommandAdd, types.ErrInvalidNetworkConfig, "bad config"},
		{"plain", CommandAdd, types.ErrInternal, "ovs is down"},
		{"panic", CommandAdd, types.ErrInternal, "panicked: boom"},
		{"nil", CommandAdd, types.ErrInternal, "no result"},
		{"", CommandStatus, types.ErrPluginNotAvailable, "ovn-controller not connected"},
		{"gone", CommandDel, 0, ""},
	} {
		resp, err := Forward(sock, testArgs(tc.id, conf), tc.cmd, 5*time.Second)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.cmd, tc.id, err)
		}
		if tc.code == 0 {
			if resp.Error != nil {
				t.Errorf("%s %s: error %v, want success", tc.cmd, tc.id, resp.Error)
			}
			continue
		}
		if resp.Error == nil || resp.Error.Code != tc.code || !strings.Contains(resp.Error.Msg, tc.msg) {
			t.Errorf("%s %s: error %+v, want code %d with %q", tc.cmd, tc.id, resp.Error, tc.code, tc.msg)
		}
	}
}

func TestServerRejectsNonPost(t *testing.T) {
	sock, _ := startServer(t, &fakeHandler{}, ServerOptions{})
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://kovn-node" + Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d", resp.StatusCode)
	}
}
