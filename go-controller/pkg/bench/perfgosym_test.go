package bench

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Lines of perf script --show-mmap-events on this machine, with a sample
// line, a data mapping and a base name two paths share.
const mmapEvents = `   kovnspinstrip PERF_RECORD_MMAP2 7660/7660: [0x400000(0x85000) @ 0 fe:00 10027347 0]: r-xp /tmp/perfexp/spin/kovnspinstrip
   kovnspinstrip PERF_RECORD_MMAP2 7660/7660: [0x7fc975200000(0x2000) @ 0 00:00 0 0]: r-xp [vdso]
   kovnspinstrip 
  kube-apiserver PERF_RECORD_MMAP2 21985/21985: [0x400000(0x2db4000) @ 0 fe:00 1 0]: r-xp /var/cache/kovn/k8s/v1.34.2/bin/kube-apiserver
  kube-apiserver PERF_RECORD_MMAP2 21985/21985: [0x31b4000(0x32f9000) @ 0x2db4000 fe:00 1 0]: r--p /var/cache/kovn/k8s/v1.34.2/bin/kube-apiserver
           pause PERF_RECORD_MMAP2 100/100: [0x400000(0x1000) @ 0 fe:00 2 0]: r-xp /run/a/rootfs/pause
           pause PERF_RECORD_MMAP2 101/101: [0x400000(0x1000) @ 0 fe:00 3 0]: r-xp /run/b/rootfs/pause
`

func TestParseMmapPaths(t *testing.T) {
	want := map[string]string{"kovnspinstrip": "/tmp/perfexp/spin/kovnspinstrip", "kube-apiserver": "/var/cache/kovn/k8s/v1.34.2/bin/kube-apiserver"}
	if got := parseMmapPaths(mmapEvents); !reflect.DeepEqual(got, want) {
		t.Errorf("paths %v, want %v", got, want)
	}
}

func TestPerfAddress(t *testing.T) {
	for sym, want := range map[string]bool{"0x000000000232aadf": true, "0x": false, "runtime.mallocgc": false, "0xzz": false} {
		if perfAddress(sym) != want {
			t.Errorf("perfAddress(%q) = %v", sym, !want)
		}
	}
}

// TestResolveGoSymbols names, from this test binary's pclntab, addresses
// given as perf gives them for a stripped binary: file offsets.
func TestResolveGoSymbols(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		t.Skip("a position-independent test binary: its addresses are not the file's")
	}
	pc := uint64(reflect.ValueOf(summariseProfile).Pointer())
	var off uint64
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && pc >= p.Vaddr && pc < p.Vaddr+p.Filesz {
			off = pc - p.Vaddr + p.Off
		}
	}
	base := filepath.Base(exe)
	rows := []perfSample{
		{samples: 2, period: 20, comm: "x", dso: base, sym: fmt.Sprintf("0x%016x", off)},
		{samples: 3, period: 30, comm: "x", dso: base, sym: fmt.Sprintf("0x%016x", off+1)},
		{samples: 1, period: 10, comm: "x", dso: "gone", sym: "0x0000000000001000"},
		{samples: 4, period: 40, comm: "x", dso: "[kernel.kallsyms]", sym: "do_idle"},
	}
	got, used := resolveGoSymbols(rows, map[string]string{base: exe, "gone": "/nonexistent/gone"})
	want := []perfSample{
		{samples: 5, period: 50, comm: "x", dso: base, sym: "github.com/kovn-io/kovn/go-controller/pkg/bench.summariseProfile"},
		rows[2], rows[3],
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(used, []string{exe}) {
		t.Errorf("resolved %+v from %v,\nwant %+v from %s", got, used, want, exe)
	}
	if !unresolved(rows) || unresolved(got[:1]) {
		t.Error("unresolved does not tell addresses from names")
	}
}
