package tree

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func sample() *Node {
	root := New("Pod", "team-a/web-1").Set("node", "n1").Set("empty", "").Set("none", []string(nil))
	lsp := root.Child("Logical_Switch_Port", "team-a_web-1").
		Set("addresses", []string{"0a:58:0a:80:01:05 10.128.1.5"}).
		Set("options", map[string]string{"requested-chassis": "n1", "iface-id-ver": "u1"}).
		Set("up", true).Set("match", "ip4 && tcp.dst <= 80")
	lsp.Child("Logical_Switch", "n1")
	root.Child("Port_Group", "pg").Set("ports", []string{"a", "b", "c", "d", "e"})
	return root
}

func TestText(t *testing.T) {
	want := `Pod team-a/web-1
  node: n1
  Logical_Switch_Port team-a_web-1
    addresses: 0a:58:0a:80:01:05 10.128.1.5
    options: iface-id-ver=u1 requested-chassis=n1
    up: true
    match: ip4 && tcp.dst <= 80
    Logical_Switch n1
  Port_Group pg
    ports:
      - a
      - b
      - c
      - d
      - e
`
	if got := sample().String(); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
}

func TestJSONKeepsFieldOrderAndSkipsEmpty(t *testing.T) {
	// As kovnctl prints it: an encoder that does not escape & < >.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sample()); err != nil {
		t.Fatal(err)
	}
	b := bytes.TrimSpace(buf.Bytes())
	s := string(b)
	if !strings.HasPrefix(s, `{"kind":"Pod","name":"team-a/web-1","fields":{"node":"n1"},"children":[`) {
		t.Errorf("json: %s", s)
	}
	if strings.Contains(s, "empty") || strings.Contains(s, "none") {
		t.Errorf("empty fields printed: %s", s)
	}
	// Field order inside an object is the order they were set.
	if i, j := strings.Index(s, `"addresses"`), strings.Index(s, `"options"`); i < 0 || j < i {
		t.Errorf("field order lost: %s", s)
	}
	if !strings.Contains(s, `"match":"ip4 && tcp.dst <= 80"`) {
		t.Errorf("match escaped: %s", s)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, s)
	}
	if len(back["children"].([]any)) != 2 {
		t.Errorf("children: %v", back["children"])
	}
}

func TestFind(t *testing.T) {
	n := sample()
	if n.Find("Logical_Switch", "n1") == nil || n.Find("Logical_Switch", "n2") != nil {
		t.Error("Find")
	}
	if v, ok := n.Find("Logical_Switch_Port", "team-a_web-1").Get("up"); !ok || v != true {
		t.Errorf("Get up = %v %v", v, ok)
	}
}
