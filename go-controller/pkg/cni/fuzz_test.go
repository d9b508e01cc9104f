package cni

// Fuzz targets for every place this package decodes bytes it did not make:
// the network configuration on the plugin's stdin (ParseNetConf), CNI_ARGS
// (NewRequest), the request body kovn-node's socket receives (serveHTTP),
// and kovn-node's answer as the plugin reads it (Forward, Plugin).
// Seed corpora: testdata/fuzz/<FuzzName>/; docs/fuzzing.md.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// quietKlog keeps the per-request log lines out of fuzzing output.
func quietKlog(f *testing.F) {
	klog.SetLogger(logr.Discard())
	f.Cleanup(klog.ClearLogger)
}

// mustCNIError requires err to be a *types.Error, as every error the plugin
// prints must be, and returns it. (Its code is not checked: kovn-node's
// error codes are passed on as they are, even 0.)
func mustCNIError(t *testing.T, what string, err error) *types.Error {
	t.Helper()
	var cerr *types.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("%s: error %v (%T) is not a *types.Error", what, err, err)
	}
	return cerr
}

// FuzzParseNetConf: the plugin's stdin. Either a decoding-failure CNI
// error, or a NetConf with a socket path and a typed prevResult; and the
// configuration survives the trip to kovn-node (the plugin sends it raw,
// the server parses it again) unchanged.
func FuzzParseNetConf(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"kovn","type":"kovn-cni"}`))
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"kovn","type":"kovn-cni","socketPath":"/run/x.sock",
		"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},
		"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.128.1.5/24"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		conf, err := ParseNetConf(data)
		if err != nil {
			if conf != nil {
				t.Fatalf("error %v together with a configuration", err)
			}
			if c := mustCNIError(t, "ParseNetConf", err); c.Code != types.ErrDecodingFailure {
				t.Fatalf("ParseNetConf error code %d, want %d (decoding failure)", c.Code, types.ErrDecodingFailure)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("invalid JSON %q accepted", data)
		}
		if conf.SocketPath == "" {
			t.Fatal("no socket path after defaulting")
		}
		if conf.RawPrevResult != nil {
			t.Fatalf("prevResult left unparsed: %v", conf.RawPrevResult)
		}
		if conf.PrevResult != nil {
			if _, err := conf.PrevResult.GetAsVersion(conf.PrevResult.Version()); err != nil {
				t.Fatalf("parsed prevResult unusable: %v", err)
			}
		}
		// Plugin → socket → server, as Forward and serveHTTP do it.
		body, err := json.Marshal(NewRequest(CommandAdd, &skel.CmdArgs{ContainerID: "c1", StdinData: data}))
		if err != nil {
			t.Fatalf("a configuration ParseNetConf accepts cannot be forwarded: %v", err)
		}
		var req Request
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
			t.Fatalf("server cannot decode the plugin's request: %v", err)
		}
		again, err := ParseNetConf(req.Config)
		if err != nil {
			t.Fatalf("configuration rejected after the trip to kovn-node: %v\nsent %s", err, body)
		}
		if !reflect.DeepEqual(conf, again) {
			t.Fatalf("configuration changed on the way to kovn-node:\n%+v\n%+v", conf, again)
		}
	})
}

// FuzzNewRequest: CNI_ARGS and the other invocation fields. The pod
// fields are exactly CNI_ARGS' K8S_POD_* values, keys never carry ';', '='
// or surrounding blanks, and a request that can be encoded reaches the
// server with the same fields.
func FuzzNewRequest(f *testing.F) {
	f.Add("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=uid-1",
		"/var/run/netns/test", []byte(`{"cniVersion":"1.1.0","name":"kovn"}`))
	f.Add("A=1;;B=x=y;=z;C", "", []byte(`{}`))
	f.Fuzz(func(t *testing.T, args, netns string, stdin []byte) {
		kv := parseCNIArgs(args)
		for k, v := range kv {
			if k == "" || strings.ContainsAny(k, ";=") || k != strings.TrimSpace(k) {
				t.Fatalf("parseCNIArgs(%q): bad key %q", args, k)
			}
			if strings.Contains(v, ";") {
				t.Fatalf("parseCNIArgs(%q): value %q of %q holds ';'", args, v, k)
			}
		}
		// Formatting the map again gives the same map.
		var pairs []string
		for k, v := range kv {
			pairs = append(pairs, k+"="+v)
		}
		if again := parseCNIArgs(strings.Join(pairs, ";")); !reflect.DeepEqual(again, kv) {
			t.Fatalf("parseCNIArgs not stable: %q → %v → %v", args, kv, again)
		}

		req := NewRequest(CommandDel, &skel.CmdArgs{ContainerID: "c1", Netns: netns, IfName: "eth0", Args: args, StdinData: stdin})
		if req.PodNamespace != kv["K8S_POD_NAMESPACE"] || req.PodName != kv["K8S_POD_NAME"] || req.PodUID != kv["K8S_POD_UID"] {
			t.Fatalf("pod fields %q %q %q, CNI_ARGS say %v", req.PodNamespace, req.PodName, req.PodUID, kv)
		}
		if (req.PodKey() == "") != (req.PodName == "") {
			t.Fatalf("PodKey %q for pod name %q", req.PodKey(), req.PodName)
		}
		_ = req.String()

		body, err := json.Marshal(req)
		// Forward cannot encode invalid JSON; the plugin parses stdin first
		// (ParseNetConf), so that never reaches it.
		if err != nil {
			if json.Valid(stdin) {
				t.Fatalf("request with valid config not encodable: %v", err)
			}
			return
		}
		if stdin != nil && !json.Valid(stdin) {
			t.Fatalf("invalid config %q encoded", stdin)
		}
		var got Request
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("server cannot decode %s: %v", body, err)
		}
		// JSON carries text: invalid UTF-8 arrives as U+FFFD, so only
		// valid text must arrive byte for byte.
		if utf8.ValidString(args) && utf8.ValidString(netns) {
			got.Config, req.Config = nil, nil
			if !reflect.DeepEqual(&got, req) {
				t.Fatalf("request changed on the wire:\n%+v\n%+v", req, &got)
			}
		}
	})
}

// FuzzServeHTTP: any body on kovn-node's socket. The server answers 200
// or 400 with a Response it can encode; 400 is a decoding failure (100)
// that never reaches the handler; a handler only ever sees requests with
// a parsed NetConf; an unknown command is error 4.
func FuzzServeHTTP(f *testing.F) {
	quietKlog(f)
	f.Add([]byte(`{"command":"ADD","containerID":"c1","netns":"/var/run/netns/x","ifName":"eth0","podNamespace":"ns1","podName":"web-0","config":{"cniVersion":"1.1.0","name":"kovn"}}`))
	f.Add([]byte(`{"command":"GC","config":{"cniVersion":"1.1.0","name":"kovn","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}}`))
	f.Add([]byte(`{"command":"BOGUS","config":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := &fakeGCHandler{}
		s := NewServer("/nonexistent/cni.sock", h, ServerOptions{})
		rec := httptest.NewRecorder()
		s.serveHTTP(rec, httptest.NewRequest(http.MethodPost, Endpoint, bytes.NewReader(body)))

		var resp Response
		dec := json.NewDecoder(rec.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("HTTP %d, unreadable answer: %v", rec.Code, err)
		}
		if resp.Result != nil && resp.Error != nil {
			t.Fatalf("answer with both result and error: %+v", resp)
		}
		reqs := h.requests()
		switch rec.Code {
		case http.StatusBadRequest:
			if resp.Error == nil || resp.Error.Code != types.ErrDecodingFailure {
				t.Fatalf("400 without a decoding-failure error: %+v", resp.Error)
			}
			if len(reqs) != 0 || len(h.gc) != 0 {
				t.Fatalf("handler called for an undecodable request: %+v", reqs)
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("HTTP %d", rec.Code)
		}
		// Accepted: it must decode, and its configuration parse.
		var req Request
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
			t.Fatalf("accepted a body that does not decode: %v", err)
		}
		if _, err := ParseNetConf(req.Config); err != nil {
			t.Fatalf("accepted a configuration ParseNetConf rejects: %v", err)
		}
		for _, r := range reqs {
			if r.NetConf == nil || r.NetConf.SocketPath == "" {
				t.Fatalf("handler got a request without NetConf: %+v", r)
			}
		}
		switch req.Command {
		case CommandAdd:
			if resp.Result == nil || len(reqs) != 1 {
				t.Fatalf("ADD: result %+v, %d handler calls", resp.Result, len(reqs))
			}
		case CommandDel, CommandCheck, CommandStatus, CommandGC:
			if resp.Error != nil || resp.Result != nil {
				t.Fatalf("%s: answer %+v", req.Command, resp)
			}
		default:
			if resp.Error == nil || resp.Error.Code != types.ErrInvalidEnvironmentVariables || len(reqs) != 0 {
				t.Fatalf("unknown command %q: answer %+v, %d handler calls", req.Command, resp.Error, len(reqs))
			}
		}
	})
}

// answerServer is a stand-in kovn-node that answers whatever the fuzzer
// chose; a fuzz worker runs its inputs one after another.
type answerServer struct {
	mu     sync.Mutex
	status int
	body   []byte
}

func (a *answerServer) set(status int, body []byte) {
	a.mu.Lock()
	a.status, a.body = status, body
	a.mu.Unlock()
}

func (a *answerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	status, body := a.status, a.body
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func startAnswerServer(f *testing.F) (*answerServer, string) {
	dir, err := os.MkdirTemp("", "kovncni") // short: sun_path is 108 bytes
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "cni.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		f.Fatal(err)
	}
	a := &answerServer{status: http.StatusOK}
	hs := &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(l) }()
	f.Cleanup(func() { _ = hs.Shutdown(context.Background()) })
	return a, sock
}

// FuzzPluginAnswer: kovn-node's answer as the plugin decodes it. Any status
// and body give either a CNI error (with nothing printed) or, for ADD, a
// result printed in the configuration's version that a runtime can parse;
// never a panic of the plugin binary.
func FuzzPluginAnswer(f *testing.F) {
	ok, _ := json.Marshal(&Response{Result: testResult("10.128.1.5")})
	f.Add(uint8(0), uint16(0), false, ok)
	f.Add(uint8(1), uint16(0), true, []byte(`{}`))
	f.Add(uint8(0), uint16(200), false, []byte(`{"error":{"code":11,"msg":"later"}}`))
	f.Add(uint8(3), uint16(300), false, []byte(`{"error":{"code":11,"msg":"down"}}`))
	f.Add(uint8(0), uint16(0), true, []byte(`{"result":{"cniVersion":"1.0.0","ips":[null],"interfaces":[null]}}`))
	a, sock := startAnswerServer(f)
	f.Fuzz(func(t *testing.T, command uint8, status uint16, v110 bool, body []byte) {
		a.set(200+int(status)%400, body)
		version := "1.0.0"
		if v110 {
			version = "1.1.0"
		}
		var out bytes.Buffer
		p := &Plugin{Stdout: &out, Timeout: 10 * time.Second}
		args := testArgs("c1", fmt.Sprintf(`{"cniVersion":%q,"name":"kovn","type":"kovn-cni","socketPath":%q}`, version, sock))
		cmds := []struct {
			name string
			fn   func(*skel.CmdArgs) error
		}{{CommandAdd, p.Add}, {CommandDel, p.Del}, {CommandCheck, p.Check}, {CommandStatus, p.Status}, {CommandGC, p.GC}}
		cmd := cmds[int(command)%len(cmds)]
		err := cmd.fn(args)
		if err != nil {
			mustCNIError(t, cmd.name, err)
			if out.Len() != 0 {
				t.Fatalf("%s failed (%v) but printed %q", cmd.name, err, out.String())
			}
			// What Main prints for it must be the spec's error object.
			var perr bytes.Buffer
			(&Plugin{Stdout: &perr, confVersion: version}).printError(mustCNIError(t, cmd.name, err))
			var e struct {
				CNIVersion string `json:"cniVersion"`
				Code       uint   `json:"code"`
			}
			if err := json.Unmarshal(perr.Bytes(), &e); err != nil || e.CNIVersion != version {
				t.Fatalf("printed error %q: %v", perr.String(), err)
			}
			return
		}
		if cmd.name != CommandAdd {
			if out.Len() != 0 {
				t.Fatalf("%s printed %q", cmd.name, out.String())
			}
			return
		}
		res, err := types100.NewResult(out.Bytes())
		if err != nil {
			t.Fatalf("ADD printed a result the runtime cannot read: %v\n%s", err, out.String())
		}
		if res.Version() != version {
			t.Fatalf("ADD printed version %s, configuration is %s", res.Version(), version)
		}
	})
}
