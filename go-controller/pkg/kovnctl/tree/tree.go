// Package tree is the output shape of `kovnctl show`: a tree of labelled
// nodes, each with ordered key/value fields, printed as indented text for
// people or as JSON for scripts. One shape for every object kind keeps the
// commands consistent and lets a script walk any of them the same way.
package tree

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Node is one entry: usually an OVN row ("Logical_Switch_Port", name) or a
// Kubernetes object ("Pod", "ns/name").
type Node struct {
	Kind     string
	Name     string
	Fields   []Field
	Children []*Node
}

// Field is one key/value of a node. Value is a string, []string,
// map[string]string, bool or int; anything else prints with %v.
type Field struct {
	Key   string
	Value any
}

// New makes a root node.
func New(kind, name string) *Node { return &Node{Kind: kind, Name: name} }

// Child appends and returns a new child.
func (n *Node) Child(kind, name string) *Node {
	c := New(kind, name)
	n.Children = append(n.Children, c)
	return c
}

// Set adds a field unless its value is empty: OVN leaves most columns
// unset, and printing every empty one would bury the ones that matter.
func (n *Node) Set(key string, value any) *Node {
	if isEmpty(value) {
		return n
	}
	n.Fields = append(n.Fields, Field{Key: key, Value: value})
	return n
}

// Get returns a field's value, for tests and callers refining a node.
func (n *Node) Get(key string) (any, bool) {
	for _, f := range n.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// Find returns the first node (depth first, n included) of kind and name.
func (n *Node) Find(kind, name string) *Node {
	if n.Kind == kind && n.Name == name {
		return n
	}
	for _, c := range n.Children {
		if f := c.Find(kind, name); f != nil {
			return f
		}
	}
	return nil
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []string:
		return len(x) == 0
	case map[string]string:
		return len(x) == 0
	case *string:
		return x == nil || *x == ""
	}
	return false
}

// WriteText prints the tree indented by two spaces per level:
//
//	Kind name
//	  key: value
//	  Kind name
func (n *Node) WriteText(w io.Writer) error {
	var b bytes.Buffer
	n.text(&b, 0)
	_, err := w.Write(b.Bytes())
	return err
}

// String is the text form.
func (n *Node) String() string {
	var b bytes.Buffer
	n.text(&b, 0)
	return b.String()
}

func (n *Node) text(b *bytes.Buffer, depth int) {
	ind := strings.Repeat("  ", depth)
	b.WriteString(ind + strings.TrimSpace(n.Kind+" "+n.Name) + "\n")
	for _, f := range n.Fields {
		writeField(b, ind+"  ", f)
	}
	for _, c := range n.Children {
		c.text(b, depth+1)
	}
}

// writeField prints short values inline and long lists one item a line,
// so that a port group of 200 ports stays readable.
func writeField(b *bytes.Buffer, ind string, f Field) {
	switch v := f.Value.(type) {
	case []string:
		if len(v) == 1 || (len(v) <= 4 && len(strings.Join(v, ", ")) <= 60) {
			fmt.Fprintf(b, "%s%s: %s\n", ind, f.Key, strings.Join(v, ", "))
			return
		}
		fmt.Fprintf(b, "%s%s:\n", ind, f.Key)
		for _, s := range v {
			fmt.Fprintf(b, "%s  - %s\n", ind, s)
		}
	case map[string]string:
		fmt.Fprintf(b, "%s%s: %s\n", ind, f.Key, MapString(v))
	case *string:
		fmt.Fprintf(b, "%s%s: %s\n", ind, f.Key, *v)
	default:
		fmt.Fprintf(b, "%s%s: %v\n", ind, f.Key, v)
	}
}

// MapString renders a map as sorted k=v pairs, the way ovn-nbctl does
// without its quoting.
func MapString(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

// MarshalJSON emits {"kind","name","fields":{…in order…},"children":[…]}.
// Fields are an object (ordered as printed) so a script can index them by
// column name.
func (n *Node) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"kind":`)
	if err := writeJSON(&b, n.Kind); err != nil {
		return nil, err
	}
	b.WriteString(`,"name":`)
	if err := writeJSON(&b, n.Name); err != nil {
		return nil, err
	}
	if len(n.Fields) > 0 {
		b.WriteString(`,"fields":{`)
		for i, f := range n.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(&b, f.Key); err != nil {
				return nil, err
			}
			b.WriteByte(':')
			if err := writeJSON(&b, f.Value); err != nil {
				return nil, err
			}
		}
		b.WriteByte('}')
	}
	if len(n.Children) > 0 {
		b.WriteString(`,"children":`)
		if err := writeJSON(&b, n.Children); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	if p, ok := v.(*string); ok && p != nil {
		v = *p
	}
	// Not json.Marshal: it escapes & < >, which fill OVN matches.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Write(bytes.TrimRight(out.Bytes(), "\n"))
	return nil
}
