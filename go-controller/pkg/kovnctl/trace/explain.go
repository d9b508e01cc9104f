package trace

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// HintLookup returns, for the SB logical flows of the given stages, each
// flow's full UUID → its external_ids:stage-hint (the first 8 hex digits
// of the NB row it was made from). ovn-trace prints only 8 digits of a
// flow's UUID; SB has the rest and the hint.
type HintLookup func(ctx context.Context, stages []string) (map[string]string, error)

// PolicyTypes tells, from the API, whether policy ns/name isolates for
// ingress and egress; ok false when unknown (no API access). Nil is
// allowed: explanations then list every policy selecting the pod.
type PolicyTypes func(ns, name string) (ingress, egress, ok bool)

// ACLMatch is an NB ACL a traced flow came from, with who owns it.
type ACLMatch struct {
	Flow      *Flow  `json:"flow"`
	UUID      string `json:"uuid"`
	Direction string `json:"direction"`
	Priority  int    `json:"priority"`
	Action    string `json:"action"`
	Match     string `json:"match"`
	PortGroup string `json:"portGroup,omitempty"`
	OwnerKind string `json:"ownerKind,omitempty"`
	Owner     string `json:"owner,omitempty"`
	ID        string `json:"id,omitempty"`
	// By says how the flow was tied to the ACL: "stage-hint" (SB's
	// record of the NB row) or "match" (same match text and priority,
	// when SB could not be asked).
	By string `json:"by"`
	// Reason is the ACL in Kubernetes terms.
	Reason string `json:"reason"`
}

// Explainer ties logical flows back to NB ACLs and their owners.
type Explainer struct {
	View        *nbview.View
	Hints       HintLookup  // nil: tie by match text only
	PolicyTypes PolicyTypes // nil: do not filter by policy type
	// Src and Dst are the traced ends (pod ports may be empty): an
	// ingress default deny isolates Dst, an egress one Src.
	Src, Dst Endpoint
}

// ACLs returns the NB ACLs behind the ACL-stage flows of the traced
// packet, in trace order, and any error asking SB (the text match is used
// then, so the caller can still print a result).
func (e *Explainer) ACLs(ctx context.Context, p *Parsed) ([]ACLMatch, error) {
	var flows []*Flow
	stages := map[string]bool{}
	for _, f := range p.Flows {
		if f.Generated == "" && IsACLStage(f.Stage) {
			flows = append(flows, f)
			stages[f.Stage] = true
		}
	}
	if len(flows) == 0 {
		return nil, nil
	}
	var hints map[string]string
	var herr error
	if e.Hints != nil {
		var list []string
		for s := range stages {
			list = append(list, s)
		}
		hints, herr = e.Hints(ctx, list)
	}
	var out []ACLMatch
	for _, f := range flows {
		acl, by := e.byHint(f, hints)
		if acl == nil {
			acl, by = e.byMatch(f)
		}
		if acl != nil {
			out = append(out, e.describe(f, acl, by))
		}
	}
	return out, herr
}

func (e *Explainer) byHint(f *Flow, hints map[string]string) (*nbdb.ACL, string) {
	var hint string
	for full, h := range hints {
		if strings.HasPrefix(full, f.UUID) {
			if hint != "" && hint != h {
				return nil, "" // two flows share the 8 digits: do not guess
			}
			hint = h
		}
	}
	if acls := e.View.ACLsByUUIDPrefix(hint); len(acls) == 1 {
		return acls[0], "stage-hint"
	}
	return nil, ""
}

// byMatch ties a flow to the ACL whose match it wraps: northd emits an
// ACL as "<conntrack condition> && (<ACL match>)" at the ACL's priority
// plus 1000 (OVN_ACL_PRI_OFFSET).
func (e *Explainer) byMatch(f *Flow) (*nbdb.ACL, string) {
	var found *nbdb.ACL
	for _, a := range e.View.ACLs {
		if a.Priority+1000 != f.Priority || !strings.Contains(f.Match, "("+a.Match+")") {
			continue
		}
		if found != nil {
			return nil, ""
		}
		found = a
	}
	if found == nil {
		return nil, ""
	}
	return found, "match"
}

func (e *Explainer) describe(f *Flow, a *nbdb.ACL, by string) ACLMatch {
	m := ACLMatch{Flow: f, UUID: a.UUID, Direction: a.Direction, Priority: a.Priority, Action: a.Action,
		Match: a.Match, By: by}
	m.OwnerKind, m.Owner = own.OwnerOf(a.ExternalIDs)
	m.ID = a.ExternalIDs[own.IDKey]
	if pg := e.View.GroupOf(a.UUID); pg != nil {
		m.PortGroup = pg.Name
	}
	m.Reason = e.reason(m)
	return m
}

// reason says what an ACL is in Kubernetes terms, from its ownership.
func (e *Explainer) reason(m ACLMatch) string {
	dir, rest, _ := strings.Cut(m.ID, "/")
	switch m.OwnerKind {
	case own.KindNetworkPolicy:
		rule, peer, _ := strings.Cut(rest, "/ipblock/")
		s := fmt.Sprintf("NetworkPolicy %s, %s rule %s", m.Owner, dir, rule)
		if peer != "" {
			s += fmt.Sprintf(" (ipBlock peer %s)", peer)
		}
		return s
	case own.KindPolicyIsolation:
		if rest == "node-management" {
			return fmt.Sprintf("namespace %s: isolated pods still accept node management addresses (kubelet probes, host network)", m.Owner)
		}
		return e.isolationReason(m.Owner, dir, m.Flow)
	case "":
		return "an ACL kovn does not own"
	}
	return fmt.Sprintf("%s %s (%s)", m.OwnerKind, m.Owner, m.ID)
}

// isolationReason names the pod isolated by ns's default deny in dir and
// the policies selecting it that isolate in dir. The pod is the port the
// ACL's flow ran for: the outport for ingress (to-lport), the inport for
// egress; after a load balancer that is the chosen backend, not the VIP
// that was asked for.
func (e *Explainer) isolationReason(ns, dir string, f *Flow) string {
	end := e.Dst
	if dir == "egress" {
		end = e.Src
	}
	if f != nil {
		port := f.Outport
		if dir == "egress" {
			port = f.Inport
		}
		if lsp := e.View.SwitchPort(port); lsp != nil && port != end.Port {
			end = Endpoint{Port: port}
			if kind, owner := own.OwnerOf(lsp.ExternalIDs); kind == own.KindPod {
				end.Pod = owner
			}
		}
	}
	var names []string
	if lsp := e.View.SwitchPort(end.Port); lsp != nil {
		for _, pg := range e.View.GroupsWithPort(lsp.UUID) {
			kind, owner := own.OwnerOf(pg.ExternalIDs)
			if kind == own.KindNetworkPolicy && e.isolates(owner, dir) && !slices.Contains(names, owner) {
				names = append(names, owner)
			}
		}
	}
	who := "the pod"
	if end.Port != "" {
		who = "port " + end.Port
	}
	if end.Pod != "" {
		who = end.Pod
	}
	by := "policies of namespace " + ns
	if len(names) > 0 {
		by = "NetworkPolicy " + join(names)
	}
	return fmt.Sprintf("default deny of namespace %s for %s: %s is isolated for %s by %s, and no rule of them allows this traffic", ns, dir, who, dir, by)
}

func (e *Explainer) isolates(key, dir string) bool {
	if e.PolicyTypes == nil {
		return true
	}
	ns, name, _ := strings.Cut(key, "/")
	in, eg, ok := e.PolicyTypes(ns, name)
	if !ok {
		return true
	}
	return (dir == "ingress" && in) || (dir == "egress" && eg)
}
