package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestPluginAddPrintsRequestedVersion(t *testing.T) {
	sock, _ := startServer(t, &fakeHandler{}, ServerOptions{})
	var out bytes.Buffer
	p := NewPlugin(&out)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"kovn","type":"kovn-cni","socketPath":%q}`, sock)
	if err := p.Add(testArgs("c1", conf)); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if res["cniVersion"] != "1.0.0" {
		t.Errorf("cniVersion = %v, want the configuration's 1.0.0", res["cniVersion"])
	}
}

func TestPluginStatusAgentDownIsNotAvailable(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "cni.sock")
	var out bytes.Buffer
	p := NewPlugin(&out)
	err := p.Status(testArgs("", fmt.Sprintf(testConf, sock)))
	cerr := cniError(t, err)
	if cerr.Code != types.ErrPluginNotAvailable || !strings.Contains(cerr.Msg, "kovn-node is not running") {
		t.Errorf("STATUS with kovn-node down: %d %q", cerr.Code, cerr.Msg)
	}
	if err := p.printError(cerr); err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	if err := json.Unmarshal(out.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e["cniVersion"] != "1.1.0" || e["code"] != float64(50) || e["msg"] != cerr.Msg {
		t.Errorf("error JSON = %s", out.String())
	}
}
