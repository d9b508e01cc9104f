package trace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"os/exec"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
)

// Runner runs ovn-trace with args and returns its stdout.
type Runner func(ctx context.Context, args []string) (string, error)

// Tracer runs traces against one SB database.
type Tracer struct {
	View        *nbview.View
	SB          string   // SB address for ovn-trace --db
	SSLArgs     []string // ovn-trace's --private-key, --certificate, --ca-cert for an ssl: SB
	Run         Runner   // nil: ExecRunner("ovn-trace")
	Hints       HintLookup
	PolicyTypes PolicyTypes
}

// Result is a trace and what it means.
type Result struct {
	Plan    *Plan    `json:"plan"`
	Command []string `json:"command"`
	Fate
	// DecidedBy are the ACLs that decided: the one that dropped the
	// packet, or those that allowed it.
	DecidedBy []ACLMatch `json:"decidedBy,omitempty"`
	// ACLs are all ACL flows the packet matched, in order.
	ACLs []ACLMatch `json:"acls,omitempty"`
	// LoadBalancing are the load balancer actions on the way ("n2
	// ls_in_lb: ct_lb_mark(backends=…)"); ovn-trace follows the first
	// backend.
	LoadBalancing []string `json:"loadBalancing,omitempty"`
	Because       string   `json:"because"`
	Warnings      []string `json:"warnings,omitempty"`
	Parsed        *Parsed  `json:"parsed,omitempty"`
	Raw           string   `json:"-"`
}

// ctNew is how many ct_next lookups report a new connection: ovn-trace
// defaults to "established", which skips the ACLs a first packet meets
// (one lookup per switch pipeline and per stateful router; 8 is more than
// a pod-to-pod or pod-to-outside path has).
const ctNew = 8

// Args are ovn-trace's arguments for a plan.
func (t *Tracer) Args(p *Plan) []string {
	args := append([]string{"--db=" + t.SB}, t.SSLArgs...)
	args = append(args, "--detailed")
	for i := 0; i < ctNew; i++ {
		args = append(args, "--ct=new")
	}
	return append(args, p.Datapath, p.Microflow)
}

// Trace plans, runs and explains one trace.
func (t *Tracer) Trace(ctx context.Context, r Request) (*Result, error) {
	p, err := MakePlan(t.View, r)
	if err != nil {
		return nil, err
	}
	run := t.Run
	if run == nil {
		run = ExecRunner("ovn-trace")
	}
	args := t.Args(p)
	out, err := run(ctx, args)
	if err != nil {
		return nil, err
	}
	res := &Result{Plan: p, Command: append([]string{"ovn-trace"}, args...), Raw: out, Parsed: Parse(out)}
	res.Fate = Decide(res.Parsed)
	res.LoadBalancing = loadBalancing(res.Parsed)
	e := &Explainer{View: t.View, Hints: t.Hints, PolicyTypes: t.PolicyTypes, Src: p.Src, Dst: p.Dst}
	acls, herr := e.ACLs(ctx, res.Parsed)
	if herr != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("could not read SB logical flows (%v); ACLs were matched by their text", herr))
	}
	res.ACLs = acls
	res.DecidedBy, res.Because = decide(res.Fate, acls)
	return res, nil
}

// decide picks the ACLs behind the verdict and says it in one sentence.
func decide(f Fate, acls []ACLMatch) ([]ACLMatch, string) {
	switch f.Verdict {
	case Delivered:
		var allows []ACLMatch
		for _, a := range acls {
			// Every node switch's priority-0 allow-related ACL only keeps
			// conntrack on (node.StatefulACL); it decides nothing a
			// switch without ACLs would not.
			if strings.HasPrefix(a.Action, "allow") && !(a.OwnerKind == own.KindNode && a.ID == own.StatefulACLID) {
				allows = append(allows, a)
			}
		}
		if len(allows) == 0 {
			return nil, "no NetworkPolicy ACL applies: neither end is isolated in the direction traced"
		}
		var why []string
		for _, a := range allows {
			why = append(why, a.Reason)
		}
		return allows, "allowed by " + strings.Join(why, "; and by ")
	case Dropped:
		d := f.Drops[0]
		if a := dropACL(d, acls); a != nil {
			return []ACLMatch{*a}, "denied by " + a.Reason
		}
		if d.Flow != nil && IsACLStage(d.Flow.Stage) {
			return nil, "dropped by an ACL stage flow that no NB ACL explains (see --verbose)"
		}
		return nil, "dropped by OVN itself, not by an ACL: " + dropHint(d)
	case Unresolved:
		return nil, "ovn-trace stops where a router must resolve an address: either no port owns it, " +
			"or it is outside OVN and SB has not learned its MAC yet (MAC_Binding); nothing was dropped on the way"
	}
	return nil, "see --verbose for ovn-trace's output"
}

// dropACL is the ACL behind a drop: the flow's own ACL, or (OVN versions
// that split ACL evaluation and action into two stages) the last ACL
// matched before it in the same pipeline.
func dropACL(d Outcome, acls []ACLMatch) *ACLMatch {
	if d.Flow == nil || !IsACLStage(d.Flow.Stage) {
		return nil
	}
	var last *ACLMatch
	for i := range acls {
		a := &acls[i]
		if a.Flow == d.Flow {
			return a
		}
		if a.Flow.Datapath == d.Flow.Datapath && a.Flow.Pipeline == d.Flow.Pipeline && a.Action == "drop" {
			last = a
		}
	}
	return last
}

// dropHint explains the stages that drop without an ACL.
func dropHint(d Outcome) string {
	if d.Flow == nil {
		return d.Text
	}
	s := d.Flow.Stage
	switch {
	case strings.Contains(s, "port_sec"):
		return s + ": the source MAC/IP is not the port's (port_security)"
	case strings.Contains(s, "ip_routing"):
		return s + ": no route to the destination"
	case strings.Contains(s, "l2_unknown") || strings.Contains(s, "l2_lkup"):
		return s + ": no port on the switch has the destination MAC"
	}
	return fmt.Sprintf("%s, priority %d, match %s", s, d.Flow.Priority, d.Flow.Match)
}

// ExecRunner runs the ovn-trace binary found by name (or path).
func ExecRunner(bin string) Runner {
	return func(ctx context.Context, args []string) (string, error) {
		path, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("ovn-trace not found (install ovn-central or ovn-host): %w", err)
		}
		cmd := exec.CommandContext(ctx, path, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) || stderr.Len() > 0 {
				return "", fmt.Errorf("ovn-trace: %v: %s", err, strings.TrimSpace(stderr.String()))
			}
			return "", fmt.Errorf("ovn-trace: %w", err)
		}
		return stdout.String(), nil
	}
}

// loadBalancing lists the traced packet's load balancer actions.
func loadBalancing(p *Parsed) []string {
	var out []string
	for _, f := range p.Flows {
		if f.Generated != "" {
			continue
		}
		for _, a := range f.Actions {
			if strings.HasPrefix(a, "ct_lb") && strings.Contains(a, "backends=") {
				out = append(out, fmt.Sprintf("%s %s: %s", f.Datapath, f.Stage, strings.TrimSuffix(a, ";")))
			}
		}
	}
	return out
}
