package trace

import (
	"regexp"
	"strconv"
	"strings"
)

// The parser reads ovn-trace's --detailed output (OVN 23.03 and later):
//
//	ingress(dp="n1", inport="a_cli")          a section header, underlined
//	--------------------------------          with dashes
//	 4. ls_out_acl (northd.c:6543): MATCH, priority 2000, uuid dc56df1f
//	    drop;                                 the flow's actions
//	    /* output to "a_web", type "" */      where an output went
//
// It does not rebuild ovn-trace's tree of forks (ct_lb, multicast): the
// output is that tree walked depth first, so the last flow before an
// outcome is the flow that produced it, which is all a verdict needs.

// Flow is one logical flow the packet matched.
type Flow struct {
	Table    int    `json:"table"`
	Stage    string `json:"stage"`
	Source   string `json:"source,omitempty"` // northd.c:LINE
	Match    string `json:"match"`
	Priority int    `json:"priority"`
	// UUID is the first 8 hex digits of the SB Logical_Flow row, all
	// ovn-trace prints.
	UUID     string   `json:"uuid"`
	Actions  []string `json:"actions,omitempty"`
	Datapath string   `json:"datapath"`
	Pipeline string   `json:"pipeline"` // ingress or egress
	// Inport and Outport are the section's logical ports (outport only
	// in egress pipelines).
	Inport  string `json:"inport,omitempty"`
	Outport string `json:"outport,omitempty"`
	// Generated names the packet-making action (arp, icmp4, …) the flow
	// ran under; empty for the traced packet itself.
	Generated string `json:"generated,omitempty"`
}

// OutcomeKind is how one branch of the trace ended.
type OutcomeKind string

// Outcome kinds.
const (
	Output  OutcomeKind = "output"  // sent out of a port (see Transit)
	Drop    OutcomeKind = "drop"    // a flow's drop; action
	NoMatch OutcomeKind = "nomatch" // no flow matched: implicit drop
	Hairpin OutcomeKind = "hairpin" // not sent back out of its inport
	Other   OutcomeKind = "other"   // anything else ovn-trace flags (***)
)

// Outcome is one end of a branch.
type Outcome struct {
	Kind     OutcomeKind `json:"kind"`
	Port     string      `json:"port,omitempty"`
	PortType string      `json:"portType,omitempty"`
	// Transit outputs go on into another datapath (patch ports between
	// switches and routers); they are steps, not ends.
	Transit   bool   `json:"transit,omitempty"`
	Datapath  string `json:"datapath,omitempty"`
	Pipeline  string `json:"pipeline,omitempty"`
	Text      string `json:"text,omitempty"`
	Flow      *Flow  `json:"flow,omitempty"` // the flow it happened in
	Generated string `json:"generated,omitempty"`
	// Hop indexes Parsed.Hops: the section it happened in (-1: none).
	Hop int `json:"hop"`
}

// Hop is one pipeline section the packet went through.
type Hop struct {
	Pipeline  string `json:"pipeline"`
	Datapath  string `json:"datapath"`
	Inport    string `json:"inport,omitempty"`
	Outport   string `json:"outport,omitempty"`
	Generated string `json:"generated,omitempty"`
}

// Parsed is ovn-trace's output, read.
type Parsed struct {
	OpenFlow string    `json:"openflow"`
	Hops     []Hop     `json:"hops"`
	Flows    []*Flow   `json:"flows"`
	Outcomes []Outcome `json:"outcomes"`
}

var (
	flowRE    = regexp.MustCompile(`^(\d+)\. (\S+)(?: \(([^)]*)\))?: (.*), priority (\d+), uuid ([0-9a-f]+)$`)
	outputRE  = regexp.MustCompile(`^/\* output to "([^"]*)", type "([^"]*)" \*/$`)
	headerRE  = regexp.MustCompile(`^([a-z_0-9]+)(?:\((.*)\))?$`)
	headArgRE = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// generators are the actions that make a new packet (a reply, an ARP
// request) in place of the traced one; what happens to that packet is not
// the traced packet's fate.
var generators = map[string]bool{
	"arp": true, "nd_ns": true, "nd_na": true, "nd_na_router": true,
	"icmp4": true, "icmp4_error": true, "icmp6": true, "icmp6_error": true,
	"tcp_reset": true, "sctp_abort": true, "reject": true,
}

// transitTypes are port types whose output ovn-trace follows into the
// peer datapath.
var transitTypes = map[string]bool{"patch": true, "l3gateway": true, "chassisredirect": true}

// Parse reads ovn-trace --detailed output.
func Parse(out string) *Parsed {
	p := &Parsed{}
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	var dp, pipeline, generated, inport, outport string
	var flow *Flow
	for i := 0; i < len(lines); i++ {
		raw := lines[i]
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "# ") && p.OpenFlow == "" {
			p.OpenFlow = strings.TrimPrefix(line, "# ")
			continue
		}
		// A header is a line underlined by dashes.
		if i+1 < len(lines) && isDashes(strings.TrimSpace(lines[i+1])) {
			if m := headerRE.FindStringSubmatch(line); m != nil {
				args := map[string]string{}
				for _, a := range headArgRE.FindAllStringSubmatch(m[2], -1) {
					args[a[1]] = a[2]
				}
				switch kind := m[1]; {
				case kind == "ingress" || kind == "egress":
					dp, pipeline, inport, outport = args["dp"], kind, args["inport"], args["outport"]
					p.Hops = append(p.Hops, Hop{Pipeline: kind, Datapath: dp, Inport: args["inport"], Outport: args["outport"], Generated: generated})
				case generators[kind]:
					// Sticky: ovn-trace prints a generated packet's
					// whole journey after the action that made it.
					generated = kind
				}
				flow = nil
				i++
				continue
			}
		}
		if m := flowRE.FindStringSubmatch(line); m != nil {
			table, _ := strconv.Atoi(m[1])
			prio, _ := strconv.Atoi(m[5])
			flow = &Flow{Table: table, Stage: m[2], Source: m[3], Match: m[4], Priority: prio, UUID: m[6],
				Datapath: dp, Pipeline: pipeline, Inport: inport, Outport: outport, Generated: generated}
			p.Flows = append(p.Flows, flow)
			continue
		}
		o := Outcome{Datapath: dp, Pipeline: pipeline, Flow: flow, Generated: generated, Text: line, Hop: len(p.Hops) - 1}
		switch m := outputRE.FindStringSubmatch(line); {
		case m != nil:
			o.Kind, o.Port, o.PortType, o.Transit = Output, m[1], m[2], transitTypes[m[2]]
		case line == "drop;":
			o.Kind = Drop
		case strings.Contains(line, "no match (implicit drop)"):
			o.Kind = NoMatch
		case strings.Contains(line, "omitting output because inport == outport"):
			o.Kind = Hairpin
		case strings.HasPrefix(line, "*** "):
			o.Kind = Other
		default:
			if flow != nil {
				flow.Actions = append(flow.Actions, line)
			}
			continue
		}
		if o.Kind != Output && flow != nil {
			flow.Actions = append(flow.Actions, line)
		}
		p.Outcomes = append(p.Outcomes, o)
	}
	return p
}

func isDashes(s string) bool {
	return len(s) >= 3 && strings.Trim(s, "-") == ""
}

// IsACLStage tells whether a logical flow stage evaluates NB ACLs:
// ls_in_acl, ls_out_acl, ls_in_acl_after_lb (apply-after-lb), and the
// _eval/_action split of newer OVN; not the *_acl_hint stages, which
// only classify conntrack state.
func IsACLStage(stage string) bool {
	return (strings.HasPrefix(stage, "ls_in_acl") || strings.HasPrefix(stage, "ls_out_acl")) &&
		!strings.Contains(stage, "hint")
}
