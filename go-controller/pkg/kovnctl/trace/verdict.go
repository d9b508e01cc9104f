package trace

import (
	"fmt"
	"strings"
)

// Verdict is the traced packet's fate.
type Verdict string

// Verdicts.
const (
	// Delivered: the packet left OVN through a non-transit port (a pod,
	// the management port, a localnet port towards the physical network).
	Delivered Verdict = "delivered"
	// Dropped: every branch of the original packet ended in a drop.
	Dropped Verdict = "dropped"
	// Unresolved: the packet was consumed by an action that sent another
	// packet instead, typically an ARP request for an unknown address.
	Unresolved Verdict = "unresolved"
	// Unknown: nothing recognizable (ovn-trace's output changed?).
	Unknown Verdict = "unknown"
)

// Fate is the verdict with the outcomes behind it.
type Fate struct {
	Verdict     Verdict   `json:"verdict"`
	DeliveredTo []Outcome `json:"deliveredTo,omitempty"`
	Drops       []Outcome `json:"drops,omitempty"`
	// Generated is set for Unresolved: the action that replaced the
	// packet; Router and NextHop say, when known, which router asked
	// for which address (ovn-trace knows only the MAC bindings in SB).
	Generated string `json:"generated,omitempty"`
	Router    string `json:"router,omitempty"`
	NextHop   string `json:"nextHop,omitempty"`
	// Path is the datapaths the packet crossed, in order, up to its first
	// delivery (or, when dropped, its first drop).
	Path []string `json:"path"`
}

// Decide reads the fate of the traced packet (not of packets it caused).
func Decide(p *Parsed) Fate {
	var f Fate
	var generated string
	for _, o := range p.Outcomes {
		if o.Generated != "" {
			generated = o.Generated
			continue
		}
		switch {
		case o.Kind == Output && !o.Transit:
			f.DeliveredTo = append(f.DeliveredTo, o)
		case o.Kind == Drop || o.Kind == NoMatch || o.Kind == Hairpin || o.Kind == Other:
			f.Drops = append(f.Drops, o)
		}
	}
	switch {
	case len(f.DeliveredTo) > 0:
		f.Verdict = Delivered
	case len(f.Drops) > 0:
		f.Verdict = Dropped
	case generated != "":
		f.Verdict, f.Generated = Unresolved, generated
		f.Router, f.NextHop = nextHop(p)
	default:
		f.Verdict = Unknown
	}
	f.Path = path(p, f)
	return f
}

// nextHop reads the address the last routing decision resolves: the
// routing stage loads it into reg0 ("reg0 = 172.18.0.1;" for a route via
// a gateway, "reg0 = ip4.dst;" for a connected network).
func nextHop(p *Parsed) (router, hop string) {
	for _, f := range p.Flows {
		if f.Generated != "" || !strings.HasSuffix(f.Stage, "_ip_routing") {
			continue
		}
		for _, a := range f.Actions {
			if v, ok := strings.CutPrefix(a, "reg0 = "); ok {
				router, hop = f.Datapath, strings.TrimSuffix(v, ";")
			}
		}
	}
	if hop == "ip4.dst" {
		hop = "the destination"
	}
	return router, hop
}

// path lists the datapaths of the traced packet's hops up to its end.
func path(p *Parsed, f Fate) []string {
	last := len(p.Hops) - 1
	var end *Outcome
	switch {
	case len(f.DeliveredTo) > 0:
		end = &f.DeliveredTo[0]
	case len(f.Drops) > 0:
		end = &f.Drops[0]
	}
	if end != nil {
		last = end.Hop
	}
	var out []string
	for _, h := range p.Hops[:last+1] {
		if h.Generated != "" {
			break
		}
		if len(out) == 0 || out[len(out)-1] != h.Datapath {
			out = append(out, h.Datapath)
		}
	}
	if end != nil && end.Kind == Output {
		out = append(out, "port "+end.Port)
	}
	return out
}

// Summary is the verdict in one line.
func (f Fate) Summary() string {
	switch f.Verdict {
	case Delivered:
		var ports []string
		for _, o := range f.DeliveredTo {
			ports = append(ports, describeOutput(o))
		}
		return "delivered to " + join(ports)
	case Dropped:
		d := f.Drops[0]
		if d.Flow == nil {
			return fmt.Sprintf("dropped in %s (%s): %s", d.Datapath, d.Pipeline, d.Text)
		}
		return fmt.Sprintf("dropped in %s %s, stage %s (priority %d)", d.Datapath, d.Pipeline, d.Flow.Stage, d.Flow.Priority)
	case Unresolved:
		if f.NextHop != "" {
			return fmt.Sprintf("not forwarded: %s has no MAC binding for %s and sends an %s request in its place", f.Router, f.NextHop, f.Generated)
		}
		return fmt.Sprintf("not forwarded: OVN sent an %s packet in its place", f.Generated)
	}
	return "no verdict found in ovn-trace's output (run with --verbose)"
}

func describeOutput(o Outcome) string {
	switch o.PortType {
	case "":
		return o.Port
	case "localnet":
		return o.Port + " (localnet: out to the physical network)"
	}
	return fmt.Sprintf("%s (type %s)", o.Port, o.PortType)
}

func join(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1:] {
		out += ", " + x
	}
	return out
}
