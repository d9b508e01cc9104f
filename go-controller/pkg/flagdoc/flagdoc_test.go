package flagdoc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

func testApp() *cli.App {
	return &cli.App{
		Name:        "demo",
		Usage:       "a demo",
		Description: "Line one.\n  indented example",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "cidr", Value: cli.NewStringSlice("10.0.0.0/8", "192.168.0.0/16"), EnvVars: []string{"DEMO_CIDR", "CIDR"}, Usage: "pod ranges"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say more"},
			&cli.StringFlag{Name: "secret", Hidden: true},
		},
		Commands: []*cli.Command{
			{
				Name: "probe", Usage: "probe a|b", ArgsUsage: "ADDR|NAME",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "timeout", Value: 2 * time.Second, Usage: "per <probe>"},
					&cli.StringFlag{Name: "to", Required: true},
				},
			},
			{Name: "bare", Usage: "no flags"},
			{Name: "internal", Hidden: true, Usage: "not for users"},
		},
	}
}

const testAppMarkdown = "## demo\n\n" +
	"a demo\n\n" +
	"```text\nLine one.\n  indented example\n```\n\n" +
	"Usage: `demo [global flags] COMMAND`\n\n" +
	"Global flags:\n\n" +
	"| Flag | Type | Default | Environment | Description |\n" +
	"|---|---|---|---|---|\n" +
	"| `--cidr` | string list | `\"10.0.0.0/8\", \"192.168.0.0/16\"` | `DEMO_CIDR`, `CIDR` | pod ranges |\n" +
	"| `--verbose`, `-v` | bool | `false` |  | say more |\n\n" +
	"### demo probe\n\n" +
	"probe a|b\n\n" +
	"Usage: `demo [global flags] probe [flags] ADDR|NAME`\n\n" +
	"Flags:\n\n" +
	"| Flag | Type | Default | Environment | Description |\n" +
	"|---|---|---|---|---|\n" +
	"| `--timeout` | duration | `2s` |  | per \\<probe> |\n" +
	"| `--to` | string | required |  |  |\n\n" +
	"### demo bare\n\n" +
	"no flags\n\n" +
	"Usage: `demo [global flags] bare`\n\n"

func TestMarkdown(t *testing.T) {
	if got := Markdown(testApp()); got != testAppMarkdown {
		t.Errorf("got:\n%s\nwant:\n%s", got, testAppMarkdown)
	}
}

// TestMarkdownConfigColumn: flags a file can set (altsrc) get a column
// saying which, and pipes in cells are escaped, code spans included.
func TestMarkdownConfigColumn(t *testing.T) {
	app := &cli.App{Name: "daemon", Flags: []cli.Flag{
		altsrc.NewIntFlag(&cli.IntFlag{Name: "mtu", Value: 1400, Usage: "pod MTU"}),
		&cli.StringFlag{Name: "mode", Value: "a|b", Usage: "a or b"},
	}}
	want := "## daemon\n\n" +
		"Usage: `daemon [flags]`\n\n" +
		"Flags:\n\n" +
		"| Flag | Type | Default | Environment | In `--config` | Description |\n" +
		"|---|---|---|---|---|---|\n" +
		"| `--mtu` | integer | `1400` |  | yes | pod MTU |\n" +
		"| `--mode` | string | `\"a\\|b\"` |  | no | a or b |\n\n"
	if got := Markdown(app); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestSubcommandsNest(t *testing.T) {
	app := &cli.App{Name: "tool", Commands: []*cli.Command{{
		Name: "db", Usage: "database commands", Aliases: []string{"d"},
		Subcommands: []*cli.Command{{Name: "dump", Flags: []cli.Flag{&cli.IntFlag{Name: "limit"}}}},
	}}}
	got := Markdown(app)
	for _, want := range []string{"### tool db\n", "Aliases: `d`\n", "Usage: `tool db COMMAND`\n", "#### tool db dump\n", "Usage: `tool db dump [flags]`\n", "| `--limit` | integer | `0` |"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func writeDoc(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flags.md")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSyncInSync(t *testing.T) {
	path := writeDoc(t, "# Flags\n\n<!-- BEGIN demo -->\n"+testAppMarkdown+"<!-- END demo -->\n\ntail\n")
	if err := Sync(path, testApp(), false); err != nil {
		t.Fatal(err)
	}
}

// TestSyncDrift: a changed Usage fails the check with the command that
// fixes it, and update mode then rewrites only that section.
func TestSyncDrift(t *testing.T) {
	doc := "# Flags\n\n<!-- BEGIN demo -->\n" + testAppMarkdown + "<!-- END demo -->\n\ntail\n"
	path := writeDoc(t, doc)
	app := testApp()
	app.Flags[0].(*cli.StringSliceFlag).Usage = "pod address ranges"
	err := Sync(path, app, false)
	if err == nil || !strings.Contains(err.Error(), "run `make generate`") || !strings.Contains(err.Error(), "pod address ranges") {
		t.Fatalf("want a drift error naming make generate and the new text, got %v", err)
	}
	if err := Sync(path, app, true); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(doc, "| pod ranges |", "| pod address ranges |", 1)
	if got := readDoc(t, path); got != want {
		t.Errorf("after update:\n%s\nwant:\n%s", got, want)
	}
	if err := Sync(path, app, false); err != nil {
		t.Errorf("after update: %v", err)
	}
}

func TestSyncMissingSection(t *testing.T) {
	path := writeDoc(t, "# Flags\n\nintro\n")
	if err := Sync(path, testApp(), false); err == nil || !strings.Contains(err.Error(), "make generate") {
		t.Fatalf("want a missing-section error naming make generate, got %v", err)
	}
	if err := Sync(path, testApp(), true); err != nil {
		t.Fatal(err)
	}
	want := "# Flags\n\nintro\n\n<!-- BEGIN demo -->\n" + testAppMarkdown + "<!-- END demo -->\n"
	if got := readDoc(t, path); got != want {
		t.Errorf("after update:\n%s\nwant:\n%s", got, want)
	}
}

func TestSyncBadMarkers(t *testing.T) {
	for name, doc := range map[string]string{
		"end only":   "<!-- END demo -->\n",
		"reversed":   "<!-- END demo -->\n<!-- BEGIN demo -->\n",
		"duplicated": "<!-- BEGIN demo -->\n<!-- END demo -->\n<!-- BEGIN demo -->\n<!-- END demo -->\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := writeDoc(t, doc)
			if err := Sync(path, testApp(), true); err == nil {
				t.Fatal("no error")
			}
			if got := readDoc(t, path); got != doc {
				t.Errorf("file changed to:\n%s", got)
			}
		})
	}
}

// TestMarkerInProse: a marker quoted inside a line is not a marker.
func TestMarkerInProse(t *testing.T) {
	path := writeDoc(t, "Sections run from `<!-- BEGIN demo -->\n` on.\n")
	if err := Sync(path, testApp(), true); err != nil {
		t.Fatal(err)
	}
	if err := Sync(path, testApp(), false); err != nil {
		t.Fatal(err)
	}
}
