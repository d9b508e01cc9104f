package trace

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints a result for people; verbose adds the ovn-trace
// command and its whole output.
func (r *Result) WriteText(w io.Writer, verbose bool) error {
	var b strings.Builder
	p := r.Plan
	fmt.Fprintf(&b, "trace %s\n", p.Describe())
	fmt.Fprintf(&b, "  from:    %s\n", endpointLine(p.Src))
	fmt.Fprintf(&b, "  to:      %s\n", endpointLine(p.Dst))
	if p.Gateway != "" {
		fmt.Fprintf(&b, "  via:     router port %s (eth.dst %s)\n", p.Gateway, p.EthDst)
	}
	for _, lb := range r.LoadBalancing {
		fmt.Fprintf(&b, "  load balancer: %s\n", lb)
	}
	fmt.Fprintf(&b, "verdict: %s\n", strings.ToUpper(string(r.Verdict)))
	fmt.Fprintf(&b, "  %s\n", r.Summary())
	if len(r.Path) > 0 {
		fmt.Fprintf(&b, "path:    %s\n", strings.Join(r.Path, " → "))
	}
	fmt.Fprintf(&b, "because: %s\n", r.Because)
	for _, a := range r.DecidedBy {
		fmt.Fprintf(&b, "  %s\n", aclLine(a))
	}
	if len(r.ACLs) > len(r.DecidedBy) {
		b.WriteString("ACLs matched on the way:\n")
		for _, a := range r.ACLs {
			fmt.Fprintf(&b, "  %s\n", aclLine(a))
		}
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", warn)
	}
	if verbose {
		fmt.Fprintf(&b, "\n$ %s\n%s", shellJoin(r.Command), r.Raw)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func endpointLine(e Endpoint) string {
	s := e.IP.String()
	if e.Pod != "" {
		s = "pod " + e.Pod + " " + s
	}
	if e.Port != "" {
		s += fmt.Sprintf(", port %s on switch %s, MAC %s", e.Port, e.Switch, e.MAC)
	}
	return s
}

func aclLine(a ACLMatch) string {
	where := ""
	if a.Flow != nil {
		where = fmt.Sprintf(" — flow %s in %s %s", a.Flow.UUID, a.Flow.Datapath, a.Flow.Stage)
	}
	owner := ""
	if a.OwnerKind != "" {
		owner = fmt.Sprintf(" [%s %s %s]", a.OwnerKind, a.Owner, a.ID)
	}
	return fmt.Sprintf("ACL %s %s %d %s %q%s%s (tied by %s)", shortUUID(a.UUID), a.Direction, a.Priority, a.Action, a.Match, owner, where, a.By)
}

func shortUUID(u string) string {
	if len(u) > 8 {
		return u[:8]
	}
	return u
}

// shellJoin quotes arguments so the printed command can be pasted.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \"'$&|;<>()*?!{}[]\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
