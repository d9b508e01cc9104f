package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// dataPathLogs are the logs that say what the probed nodes' data path
// was doing: port changes, flow changes, datapath purges.
var dataPathLogs = []string{
	"ovs-vswitchd:node1", "ovs-vswitchd:node2",
	"ovn-controller:node1", "ovn-controller:node2",
	"kovn-node:node1", "kovn-node:node2",
}

// logContext returns the lines of the probed nodes' data-path logs
// stamped within [at-1s, at+2s] (a probe runs for up to 1 s), at most max
// of them, each prefixed with its log's name. A lost probe in a CI run is
// then explained by what its output shows, since the logs themselves
// are gone with the lab.
func logContext(logDir string, at time.Time, max int) []string {
	// OVS stamps whole seconds: widen the start to the second.
	from, to := at.Add(-time.Second).Truncate(time.Second), at.Add(2*time.Second)
	var out []string
	for _, name := range dataPathLogs {
		f, err := os.Open(filepath.Join(logDir, name+".log"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			ts, ok := logLineTime(sc.Text(), at)
			if !ok || ts.Before(from) || ts.After(to) {
				continue
			}
			if len(out) < max {
				out = append(out, name+": "+sc.Text())
			}
		}
		f.Close()
	}
	if len(out) == max {
		out = append(out, fmt.Sprintf("(more lines cut at %d)", max))
	}
	return out
}

// logLineTime reads the time stamp of an OVS/OVN log line
// ("2026-11-21T18:10:30Z|…", second resolution) or a klog line
// ("I1121 18:10:32.219711 …", local time, no year); near gives the year
// a klog line lacks.
func logLineTime(line string, near time.Time) (time.Time, bool) {
	if len(line) > 20 && line[20] == '|' {
		t, err := time.Parse(time.RFC3339, line[:20])
		return t, err == nil
	}
	if len(line) > 21 && strings.ContainsRune("IWEF", rune(line[0])) && line[5] == ' ' {
		t, err := time.Parse("0102 15:04:05.000000", line[1:21])
		if err != nil {
			return time.Time{}, false
		}
		return time.Date(near.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.Local), true
	}
	return time.Time{}, false
}
