package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// matchChecker is a fast, in-process check of an ACL match against the
// part of OVN's expression language kovn writes. It is strict where OVN is
// (balanced groups, "&&" and "||" only mixed inside parentheses, known
// fields, constants of the field's width, no empty or ordered sets,
// port groups and address sets that exist) so that the fuzzer can call it
// on every input. It is not the proof: TestPolicyMatchesAcceptedByOVN runs
// the seed corpus and a generated set through OVN's own parser
// (ovn-trace), together with calibration matches on which both must agree.
type matchChecker struct {
	addressSets map[string]bool // names, without '$'
	portGroups  map[string]bool // names, without '@'
}

type fieldKind int

const (
	kindPort  fieldKind = iota // inport/outport: a port name or @port_group
	kindIPv4                   // ip4.src/ip4.dst: address, CIDR or $address_set
	kindInt16                  // tcp/udp/sctp .src/.dst
	kindBool                   // predicates: ip4, tcp, ...
)

var matchFields = map[string]fieldKind{
	"inport": kindPort, "outport": kindPort,
	"ip4.src": kindIPv4, "ip4.dst": kindIPv4,
	"tcp.src": kindInt16, "tcp.dst": kindInt16, "udp.src": kindInt16, "udp.dst": kindInt16,
	"sctp.src": kindInt16, "sctp.dst": kindInt16,
	"ip4": kindBool, "ip": kindBool, "tcp": kindBool, "udp": kindBool, "sctp": kindBool, "arp": kindBool,
}

var relops = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tPortGroup  // @name
	tAddressSet // $name
	tConst      // number, IPv4 address, CIDR
	tString
	tOp // == != < <= > >= && || ! ( ) { } ,
)

type token struct {
	kind tokKind
	text string
}

func isNameStart(c byte) bool {
	return c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

// lex splits a match into tokens, as OVN's lexer does for what kovn writes.
func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '@' || c == '$':
			j := i + 1
			if j >= len(s) || !isNameStart(s[j]) {
				return nil, fmt.Errorf("%c without a name at %d", c, i)
			}
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			k := tPortGroup
			if c == '$' {
				k = tAddressSet
			}
			out = append(out, token{k, s[i+1 : j]})
			i = j
		case isNameStart(c) && c != '.':
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			out = append(out, token{tIdent, s[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && (isNameChar(s[j]) || s[j] == ':' || s[j] == '/') {
				j++
			}
			out = append(out, token{tConst, s[i:j]})
			i = j
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, token{tString, s[i+1 : j]})
			i = j + 1
		default:
			op := ""
			for _, o := range []string{"==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "{", "}", ","} {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
			out = append(out, token{tOp, op})
			i += len(op)
		}
	}
	return append(out, token{kind: tEOF}), nil
}

type matchParser struct {
	c    *matchChecker
	toks []token
	pos  int
}

func (p *matchParser) peek() token { return p.toks[p.pos] }
func (p *matchParser) next() token { t := p.toks[p.pos]; p.pos++; return t }
func (p *matchParser) isOp(op string) bool {
	t := p.peek()
	return t.kind == tOp && t.text == op
}

// check parses a whole match.
func (c *matchChecker) check(match string) error {
	toks, err := lex(match)
	if err != nil {
		return err
	}
	p := &matchParser{c: c, toks: toks}
	if err := p.expr(); err != nil {
		return err
	}
	if t := p.peek(); t.kind != tEOF {
		return fmt.Errorf("trailing %q", t.text)
	}
	return nil
}

// expr: terms joined by one kind of operator; OVN rejects "a && b || c".
func (p *matchParser) expr() error {
	if err := p.unary(); err != nil {
		return err
	}
	joiner := ""
	for p.isOp("&&") || p.isOp("||") {
		op := p.next().text
		if joiner != "" && op != joiner {
			return fmt.Errorf("&& and || must be parenthesized when used together")
		}
		joiner = op
		if err := p.unary(); err != nil {
			return err
		}
	}
	return nil
}

func (p *matchParser) unary() error {
	switch t := p.peek(); {
	case t.kind == tOp && t.text == "!":
		p.next()
		return p.unary()
	case t.kind == tOp && t.text == "(":
		p.next()
		if err := p.expr(); err != nil {
			return err
		}
		if !p.isOp(")") {
			return fmt.Errorf("expecting ')' at %q", p.peek().text)
		}
		p.next()
		return nil
	case t.kind == tIdent:
		return p.comparison()
	default:
		return fmt.Errorf("expecting a field, '!' or '(' at %q", t.text)
	}
}

func (p *matchParser) comparison() error {
	name := p.next().text
	kind, ok := matchFields[name]
	if !ok {
		return fmt.Errorf("unknown field %q", name)
	}
	rel := p.peek()
	if rel.kind != tOp || !relops[rel.text] {
		if kind == kindBool {
			return nil // a predicate on its own
		}
		return fmt.Errorf("field %s needs a comparison", name)
	}
	if kind == kindBool {
		return fmt.Errorf("predicate %s cannot be compared", name)
	}
	p.next()
	ordered := rel.text != "==" && rel.text != "!="
	if ordered && kind != kindInt16 {
		return fmt.Errorf("%s %s: ordering only applies to integer fields", name, rel.text)
	}
	if p.isOp("{") {
		if ordered {
			return fmt.Errorf("only == and != operators may be used with value sets")
		}
		p.next()
		for {
			if err := p.value(name, kind, false); err != nil {
				return err
			}
			if p.isOp(",") {
				p.next()
				continue
			}
			if p.isOp("}") {
				p.next()
				return nil
			}
			return fmt.Errorf("expecting ',' or '}' at %q", p.peek().text)
		}
	}
	return p.value(name, kind, ordered)
}

func (p *matchParser) value(field string, kind fieldKind, ordered bool) error {
	t := p.next()
	switch kind {
	case kindPort:
		switch t.kind {
		case tString:
			return nil
		case tPortGroup:
			if !p.c.portGroups[t.text] {
				return fmt.Errorf("port group %q does not exist", t.text)
			}
			return nil
		}
	case kindIPv4:
		switch t.kind {
		case tAddressSet:
			if !p.c.addressSets[t.text] {
				return fmt.Errorf("address set %q does not exist", t.text)
			}
			return nil
		case tConst:
			if strings.Contains(t.text, "/") {
				pfx, err := netip.ParsePrefix(t.text)
				if err != nil || !pfx.Addr().Is4() {
					return fmt.Errorf("%s: %q is not an IPv4 CIDR", field, t.text)
				}
				return nil
			}
			if a, err := netip.ParseAddr(t.text); err != nil || !a.Is4() {
				return fmt.Errorf("%s: %q is not an IPv4 address", field, t.text)
			}
			return nil
		}
	case kindInt16:
		if t.kind == tConst {
			n, err := strconv.ParseUint(t.text, 10, 64)
			if err != nil || n > 65535 {
				return fmt.Errorf("%s: %q is not a 16-bit integer", field, t.text)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: unexpected %q", field, t.text)
}
