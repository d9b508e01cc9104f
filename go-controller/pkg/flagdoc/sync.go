package flagdoc

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// UpdateEnv, set to 1, makes Sync rewrite the document instead of
// comparing; `make generate` sets it.
const UpdateEnv = "KOVN_UPDATE_DOCS"

// regenerate is the command that brings the document back in line.
const regenerate = "make generate"

// Sync compares the app's section of the Markdown file at path, between
// <!-- BEGIN name --> and <!-- END name --> lines, with Markdown(app).
// With update it writes the rendered section instead, appending it when
// the file has none, so a new binary needs only its test.
func Sync(path string, app *cli.App, update bool) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	want := Markdown(app)
	start, end, err := findSection(doc, app.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if update {
		return writeSection(path, doc, start, end, app.Name, want)
	}
	if start < 0 {
		return fmt.Errorf("%s has no %s section; run `%s` to add it", path, app.Name, regenerate)
	}
	if got := string(doc[start:end]); got != want {
		return fmt.Errorf("%s: the %s section differs from the flags in the code; run `%s` to regenerate it\n%s",
			path, app.Name, regenerate, firstDifference(got, want))
	}
	return nil
}

func beginMarker(name string) string { return "<!-- BEGIN " + name + " -->\n" }
func endMarker(name string) string   { return "<!-- END " + name + " -->\n" }

// findSection returns the byte range between the markers, or -1, -1 when
// there are none. Markers count only at the start of a line, so prose that
// quotes one does not.
func findSection(doc []byte, name string) (int, int, error) {
	begin, end := markerLines(doc, beginMarker(name)), markerLines(doc, endMarker(name))
	switch {
	case len(begin) == 0 && len(end) == 0:
		return -1, -1, nil
	case len(begin) != 1 || len(end) != 1:
		return 0, 0, fmt.Errorf("want one %q and one %q line, have %d and %d",
			strings.TrimSpace(beginMarker(name)), strings.TrimSpace(endMarker(name)), len(begin), len(end))
	case end[0] < begin[0]:
		return 0, 0, fmt.Errorf("the END marker of %s comes before its BEGIN", name)
	}
	return begin[0] + len(beginMarker(name)), end[0], nil
}

// markerLines returns the offsets of every line that is exactly marker.
func markerLines(doc []byte, marker string) []int {
	var at []int
	for off := 0; off < len(doc); {
		i := bytes.Index(doc[off:], []byte(marker))
		if i < 0 {
			break
		}
		if pos := off + i; pos == 0 || doc[pos-1] == '\n' {
			at = append(at, pos)
		}
		off += i + len(marker)
	}
	return at
}

func writeSection(path string, doc []byte, start, end int, name, section string) error {
	var out []byte
	if start < 0 {
		out = append(bytes.TrimRight(doc, "\n"), "\n\n"+beginMarker(name)+section+endMarker(name)...)
	} else {
		if string(doc[start:end]) == section {
			return nil
		}
		out = append(append(append([]byte{}, doc[:start]...), section...), doc[end:]...)
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, st.Mode().Perm())
}

// firstDifference shows the first line where the document and the code
// disagree, which is usually all a reviewer needs to see.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		gl, wl := lineAt(g, i), lineAt(w, i)
		if gl != wl {
			return fmt.Sprintf("first difference, line %d of the section:\n  docs: %q\n  code: %q", i+1, gl, wl)
		}
	}
	return ""
}

func lineAt(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(end)"
}

// CmdDoc is docs/flags.md as seen from a binary's package directory,
// go-controller/cmd/NAME, where `go test` runs that package's tests.
const CmdDoc = "../../../docs/flags.md"

// Check is the body of every binary's TestFlagReference: it compares the
// binary's section of docs/flags.md with its flags, or rewrites the
// section when UpdateEnv is 1.
func Check(t testing.TB, app *cli.App) {
	t.Helper()
	if err := Sync(CmdDoc, app, os.Getenv(UpdateEnv) == "1"); err != nil {
		t.Fatal(err)
	}
}
