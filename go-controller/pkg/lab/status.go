package lab

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ChassisInfo is a host's registration in the southbound database.
type ChassisInfo struct {
	Name, Hostname string
	Encaps         []string // "geneve 172.18.0.11"
}

// Chassis reads the SB Chassis and Encap tables, keyed by chassis name.
func (l *Lab) Chassis() (map[string]ChassisInfo, error) {
	sbctl := []string{"ovn-sbctl", "--db=" + l.OVNUnixRemote("sb"), "--timeout=5", "--format=csv", "--data=bare", "--no-headings"}
	out, err := run(append(sbctl, "--columns=name,hostname", "list", "Chassis")...)
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		return nil, err
	}
	res := map[string]ChassisInfo{}
	for _, r := range rows {
		if len(r) == 2 {
			res[r[0]] = ChassisInfo{Name: r[0], Hostname: r[1]}
		}
	}
	out, err = run(append(sbctl, "--columns=chassis_name,type,ip", "list", "Encap")...)
	if err != nil {
		return nil, err
	}
	rows, err = csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if c, ok := res[r[0]]; ok && len(r) == 3 {
			c.Encaps = append(c.Encaps, r[1]+" "+r[2])
			res[r[0]] = c
		}
	}
	return res, nil
}

// WriteStatus prints components, chassis and node readiness. It returns an
// error when something is not healthy, so scripts can rely on the exit code.
func (l *Lab) WriteStatus(ctx context.Context, w io.Writer) error {
	var problems []string
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "COMPONENT\tHOST\tPID\tSTATE\n")
	for _, name := range startOrder(l.sup.Names()) {
		st := l.sup.Status(name)
		spec, _ := l.sup.Spec(name)
		state := "running"
		if !st.Running {
			state = "STOPPED"
			problems = append(problems, name+" is not running")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", name, componentHost(spec), st.Pid, state)
	}
	tw.Flush()

	fmt.Fprintln(w)
	chassis, err := l.Chassis()
	if err != nil {
		problems = append(problems, "SB: "+err.Error())
	}
	nodeState := map[string]string{}
	if cs, err := l.Client(); err == nil {
		if nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
			for i := range nodes.Items {
				n := &nodes.Items[i]
				nodeState[n.Name] = "NotReady"
				if nodeReady(n) {
					nodeState[n.Name] = "Ready"
				}
			}
		} else {
			problems = append(problems, "API: "+err.Error())
		}
	} else {
		problems = append(problems, "API: "+err.Error())
	}
	fmt.Fprintf(tw, "HOST\tIP\tNODE\tCHASSIS\tENCAP\n")
	for _, h := range l.hosts() {
		c, ok := chassis[h]
		cstate := "missing"
		if ok {
			cstate = c.Name
		} else {
			problems = append(problems, "no chassis for "+h)
		}
		ns := nodeState[h]
		switch {
		case l.HasExternalHost(h):
			ns = "(bare metal)" // never a Kubernetes Node
		case ns == "":
			ns = "unregistered"
			problems = append(problems, h+" is not registered")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h, l.hostIP(h), ns, cstate, strings.Join(c.Encaps, ","))
	}
	tw.Flush()
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
