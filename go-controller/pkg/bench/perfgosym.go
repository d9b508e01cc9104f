package bench

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kubernetes' release binaries (the API server, kube-controller-manager,
// kubelet) and Debian's etcd are stripped: no ELF symbol table, so perf
// shows their samples as addresses and a profile of the API server names
// no function. Go keeps its own table, .gopclntab, in every binary, and
// that names them.

// perfAddress says whether sym is how perf report shows a symbol it
// could not resolve: 0x and hex digits.
func perfAddress(sym string) bool {
	hex, ok := strings.CutPrefix(sym, "0x")
	return ok && hex != "" && strings.Trim(hex, "0123456789abcdef") == ""
}

// unresolved says whether some of rows are addresses in a binary (not
// the kernel's, not an anonymous map's) that its pclntab might name.
func unresolved(rows []perfSample) bool {
	for _, r := range rows {
		if perfAddress(r.sym) && !strings.HasPrefix(r.dso, "[") {
			return true
		}
	}
	return false
}

// perfMmapArgs make perf print the recording's mmap events (and one line
// per sample, which parseMmapPaths skips): the binaries' full paths,
// which perf report shows only by base name.
func perfMmapArgs(file string) []string {
	return []string{"script", "-i", file, "--show-mmap-events", "-F", "comm"}
}

// parseMmapPaths maps the base name of every executable mapping to its
// path, from lines such as
//
//	kube-apiserver PERF_RECORD_MMAP2 7660/7660: [0x400000(0x2db4000) @ 0 fe:00 10027347 0]: r-xp /var/cache/kovn/k8s/v1.34.2/bin/kube-apiserver
//
// A base name two paths share is left out: which one a row means, perf
// report does not say.
func parseMmapPaths(out string) map[string]string {
	paths, clash := map[string]string{}, map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		i := strings.LastIndex(line, "]: ")
		if !strings.Contains(line, "PERF_RECORD_MMAP") || i < 0 {
			continue
		}
		prot, path, ok := strings.Cut(line[i+3:], " ")
		if !ok || !strings.Contains(prot, "x") || !strings.HasPrefix(path, "/") {
			continue
		}
		base := filepath.Base(path)
		if p, seen := paths[base]; seen && p != path {
			clash[base] = true
		}
		paths[base] = path
	}
	for base := range clash {
		delete(paths, base)
	}
	return paths
}

// goSymbols names addresses of one Go binary.
type goSymbols struct {
	f   *elf.File
	tab *gosym.Table
}

func openGoSymbols(path string) (*goSymbols, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		f.Close()
		return nil, fmt.Errorf("%s: no .gopclntab: not a Go binary", path)
	}
	data, err := pcln.Data()
	if err == nil {
		var tab *gosym.Table
		if tab, err = gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr)); err == nil {
			return &goSymbols{f: f, tab: tab}, nil
		}
	}
	f.Close()
	return nil, fmt.Errorf("%s: %w", path, err)
}

// name is the function at perf's address, which is an offset into the
// file (perf subtracts the mapping's start and adds its file offset):
// the loadable segment that holds it gives the virtual address.
func (g *goSymbols) name(off uint64) string {
	for _, p := range g.f.Progs {
		if p.Type != elf.PT_LOAD || off < p.Off || off >= p.Off+p.Filesz {
			continue
		}
		if fn := g.tab.PCToFunc(off - p.Off + p.Vaddr); fn != nil {
			return fn.Name
		}
	}
	return ""
}

// resolveGoSymbols names the addresses of rows that their binary's
// pclntab knows, and merges the rows that then name the same function.
// A binary that is gone, or not Go, keeps its addresses. used lists the
// binaries that named some: perf report on the file still shows
// addresses for those.
func resolveGoSymbols(rows []perfSample, paths map[string]string) (out []perfSample, used []string) {
	bins := map[string]*goSymbols{} // nil: cannot resolve
	defer func() {
		for _, g := range bins {
			if g != nil {
				g.f.Close()
			}
		}
	}()
	named := map[string]bool{}
	at := map[perfSample]int{} // key: the row with no counts
	for _, r := range rows {
		if perfAddress(r.sym) && paths[r.dso] != "" {
			g, ok := bins[r.dso]
			if !ok {
				g, _ = openGoSymbols(paths[r.dso])
				bins[r.dso] = g
			}
			if off, err := strconv.ParseUint(strings.TrimPrefix(r.sym, "0x"), 16, 64); g != nil && err == nil {
				if name := g.name(off); name != "" {
					r.sym = name
					named[paths[r.dso]] = true
				}
			}
		}
		key := perfSample{comm: r.comm, dso: r.dso, sym: r.sym}
		if i, ok := at[key]; ok {
			out[i].samples += r.samples
			out[i].period += r.period
			continue
		}
		at[key] = len(out)
		out = append(out, r)
	}
	for p := range named {
		used = append(used, p)
	}
	sort.Strings(used)
	return out, used
}
