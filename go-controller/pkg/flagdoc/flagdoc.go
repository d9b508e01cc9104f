// Package flagdoc renders a urfave/cli App — its flags and every command's
// — as Markdown, and keeps that text in the App's section of
// docs/flags.md. Each binary's test compares the two, so the configuration
// reference is generated from the code and cannot drift from it.
package flagdoc

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// Markdown renders app as a "##" section: usage, flags, then every visible
// command (recursively) in definition order. Render an App that has not
// run: running adds urfave/cli's own help flag and command to it.
func Markdown(app *cli.App) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", app.Name)
	writeText(&b, app.Usage, app.Description)
	writeSynopsis(&b, appSynopsis(app))
	label := "Flags"
	if len(app.Commands) > 0 {
		label = "Global flags"
	}
	writeFlags(&b, label, app.Flags)
	for _, c := range app.Commands {
		writeCommand(&b, []string{app.Name}, len(visible(app.Flags)) > 0, c, 3)
	}
	return b.String()
}

func writeCommand(b *strings.Builder, parents []string, globalFlags bool, c *cli.Command, level int) {
	if c.Hidden {
		return
	}
	path := append(append([]string{}, parents...), c.Name)
	fmt.Fprintf(b, "%s %s\n\n", strings.Repeat("#", min(level, 6)), strings.Join(path, " "))
	writeText(b, c.Usage, c.Description)
	if len(c.Aliases) > 0 {
		fmt.Fprintf(b, "Aliases: %s\n\n", codeList(c.Aliases))
	}
	writeSynopsis(b, commandSynopsis(parents, globalFlags, c))
	writeFlags(b, "Flags", c.Flags)
	for _, sub := range c.Subcommands {
		writeCommand(b, path, globalFlags, sub, level+1)
	}
}

// writeText writes the one-line usage as a paragraph and the description
// verbatim in a text block: descriptions are laid out for a terminal
// (indented examples, hard line breaks) that Markdown would reflow.
func writeText(b *strings.Builder, usage, description string) {
	if usage != "" {
		fmt.Fprintf(b, "%s\n\n", escape(usage))
	}
	if description != "" {
		fmt.Fprintf(b, "```text\n%s\n```\n\n", strings.TrimRight(description, "\n"))
	}
}

func writeSynopsis(b *strings.Builder, words []string) {
	fmt.Fprintf(b, "Usage: %s\n\n", code(strings.Join(words, " ")))
}

func appSynopsis(app *cli.App) []string {
	words := []string{app.Name}
	if len(app.Commands) > 0 {
		if len(visible(app.Flags)) > 0 {
			words = append(words, "[global flags]")
		}
		return append(words, "COMMAND")
	}
	if len(visible(app.Flags)) > 0 {
		words = append(words, "[flags]")
	}
	if app.ArgsUsage != "" {
		words = append(words, app.ArgsUsage)
	}
	return words
}

func commandSynopsis(parents []string, globalFlags bool, c *cli.Command) []string {
	words := []string{parents[0]}
	if globalFlags {
		words = append(words, "[global flags]")
	}
	words = append(append(words, parents[1:]...), c.Name)
	if len(c.Subcommands) > 0 {
		return append(words, "COMMAND")
	}
	if len(visible(c.Flags)) > 0 {
		words = append(words, "[flags]")
	}
	if c.ArgsUsage != "" {
		words = append(words, c.ArgsUsage)
	}
	return words
}

// writeFlags writes the visible flags as a table. The config-file column
// appears only where some flag can be read from a file (altsrc), which is
// the exception worth stating per flag.
func writeFlags(b *strings.Builder, label string, flags []cli.Flag) {
	flags = visible(flags)
	if len(flags) == 0 {
		return
	}
	fromFile := false
	for _, f := range flags {
		fromFile = fromFile || inConfigFile(f)
	}
	fmt.Fprintf(b, "%s:\n\n| Flag | Type | Default | Environment |", label)
	if fromFile {
		b.WriteString(" In `--config` |")
	}
	b.WriteString(" Description |\n|---|---|---|---|")
	if fromFile {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for _, f := range flags {
		writeFlagRow(b, f, fromFile)
	}
	b.WriteString("\n")
}

func writeFlagRow(b *strings.Builder, f cli.Flag, fromFile bool) {
	cells := []string{flagNames(f), typeName(f), defaultText(f), codeList(envVars(f))}
	if fromFile {
		cells = append(cells, yesNo(inConfigFile(f)))
	}
	cells = append(cells, escape(usage(f)))
	for i, c := range cells {
		// GFM splits cells before parsing spans: a pipe needs its
		// backslash even inside a code span.
		cells[i] = strings.ReplaceAll(c, "|", `\|`)
	}
	fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
}

func visible(flags []cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		out = append(out, f)
	}
	return out
}

func flagNames(f cli.Flag) string {
	var names []string
	for _, n := range f.Names() {
		if len(n) == 1 {
			names = append(names, "-"+n)
		} else {
			names = append(names, "--"+n)
		}
	}
	return codeList(names)
}

// typeName reads the flag's Go type, e.g. *altsrc.StringSliceFlag: the
// altsrc wrappers are distinct types, so a type switch on cli's would miss
// them.
func typeName(f cli.Flag) string {
	t := fmt.Sprintf("%T", f)
	t = strings.TrimSuffix(t[strings.LastIndex(t, ".")+1:], "Flag")
	switch t {
	case "String", "Bool", "Duration", "Timestamp":
		return strings.ToLower(t)
	case "StringSlice":
		return "string list"
	case "Int", "Int64", "Uint", "Uint64":
		return "integer"
	case "IntSlice", "Int64Slice", "UintSlice", "Uint64Slice":
		return "integer list"
	case "Float64":
		return "number"
	case "Float64Slice":
		return "number list"
	}
	return strings.ToLower(t)
}

// defaultText is what --help shows after "default:", so the two agree;
// "required" replaces it where the flag must be given.
func defaultText(f cli.Flag) string {
	if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
		return "required"
	}
	d, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return ""
	}
	return code(d.GetDefaultText())
}

func envVars(f cli.Flag) []string {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return d.GetEnvVars()
	}
	return nil
}

func usage(f cli.Flag) string {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return d.GetUsage()
	}
	return ""
}

// inConfigFile: altsrc flags are the ones an App's Before can fill from a
// file; plain cli flags on the same App cannot be set there.
func inConfigFile(f cli.Flag) bool {
	_, ok := f.(altsrc.FlagInputSourceExtension)
	return ok
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func codeList(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}

// code is s as a code span; a backtick inside needs a longer fence.
func code(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "\n", " ")
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// escape keeps usage text literal: '<' would start HTML ("app=s<m>"),
// '*' emphasis. '_' is left alone: within a word (OVN_NB_DB) it never
// emphasises, and escaping it hurts the source.
func escape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "`", "\\`", "*", `\*`, "<", `\<`, "\n", " ")
	return r.Replace(s)
}
