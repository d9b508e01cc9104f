package ipam

import (
	"slices"
	"sort"
)

// span is an inclusive range of indices.
type span struct{ lo, hi u128 }

// pool is the core both allocators share: it hands indices in [0, last]
// minus holes to owners, scanning forward from a cursor. The allocators
// only translate between indices and addresses or subnets, so the tricky
// part (cursor, wrap, holes, owner bookkeeping) is written and fuzzed once.
//
// pool does no locking; its wrappers hold their mutex around every call.
type pool struct {
	last    u128   // highest index; storing it rather than a size lets ::/0 fit
	holes   []span // sorted, disjoint, non-adjacent, inside [0, last]
	usable  u128   // indices in [0, last] outside holes
	byIdx   map[u128]string
	byOwner map[string]u128
	next    u128 // cursor: first candidate of the next scan

	// lastFreed is the most recently released index. The cursor alone
	// can land right on it (it was allocated in an earlier lap, or
	// statically ahead of the cursor), so allocate skips it while anything
	// else is free: a pod created right after another was deleted never
	// gets the deleted pod's address unless that is the only one left.
	lastFreed    u128
	hasLastFreed bool
}

// newPool sorts and merges holes, which must lie inside [0, last] with
// lo <= hi. The caller guarantees usable fits in u128, i.e. not
// (last == max && no holes).
func newPool(last u128, holes []span) *pool {
	hs := slices.Clone(holes)
	slices.SortFunc(hs, func(a, b span) int { return a.lo.cmp(b.lo) })
	merged := hs[:0]
	for _, h := range hs {
		if n := len(merged); n > 0 {
			prev := &merged[n-1]
			// Merge overlapping and adjacent spans so a scan jumps a run
			// of exclusions in one step.
			if prev.hi.isMax() || h.lo.cmp(prev.hi.add(one)) <= 0 {
				if h.hi.cmp(prev.hi) > 0 {
					prev.hi = h.hi
				}
				continue
			}
		}
		merged = append(merged, h)
	}
	// usable = last + 1 - sum(holes), computed in an order that cannot
	// overflow as long as at least one index is a hole or last < max.
	usable := last
	for _, h := range merged {
		usable = usable.sub(h.hi.sub(h.lo).add(one))
	}
	usable = usable.add(one)
	return &pool{
		last:    last,
		holes:   merged,
		usable:  usable,
		byIdx:   make(map[u128]string),
		byOwner: make(map[string]u128),
	}
}

// hole returns the hole containing i, if any.
func (p *pool) hole(i u128) (span, bool) {
	k := sort.Search(len(p.holes), func(k int) bool { return p.holes[k].hi.cmp(i) >= 0 })
	if k < len(p.holes) && p.holes[k].lo.cmp(i) <= 0 {
		return p.holes[k], true
	}
	return span{}, false
}

// valid reports whether i may ever be handed out.
func (p *pool) valid(i u128) bool {
	if i.cmp(p.last) > 0 {
		return false
	}
	_, in := p.hole(i)
	return !in
}

func (p *pool) used() int { return len(p.byIdx) }

func (p *pool) free() u128 { return p.usable.sub(u64(uint64(len(p.byIdx)))) }

func (p *pool) get(owner string) (u128, bool) {
	i, ok := p.byOwner[owner]
	return i, ok
}

func (p *pool) owner(i u128) (string, bool) {
	o, ok := p.byIdx[i]
	return o, ok
}

// take records i for owner; the caller has checked that both are free.
func (p *pool) take(owner string, i u128) {
	p.byIdx[i] = owner
	p.byOwner[owner] = i
}

func (p *pool) release(owner string) (u128, bool) {
	i, ok := p.byOwner[owner]
	if !ok {
		return u128{}, false
	}
	delete(p.byOwner, owner)
	delete(p.byIdx, i)
	p.lastFreed, p.hasLastFreed = i, true
	return i, true
}

// allocate takes the first free index at or after the cursor, wrapping
// once, and moves the cursor past it. Every loop iteration either returns
// or steps over one used index, one hole or lastFreed, and a lap visits
// each at most once (the one under the start point twice), which bounds
// the loop.
func (p *pool) allocate(owner string) (u128, bool) {
	free := p.free()
	if free.isZero() {
		return u128{}, false
	}
	avoid := p.hasLastFreed && free.cmp(one) > 0
	c := p.next
	for steps := len(p.byIdx) + len(p.holes) + 3; steps > 0; steps-- {
		if c.cmp(p.last) > 0 {
			c = u128{}
		}
		if h, in := p.hole(c); in {
			c = h.hi.add(one) // wraps to 0 past the top of ::/0, as wanted
			continue
		}
		if _, used := p.byIdx[c]; used || (avoid && c == p.lastFreed) {
			c = c.add(one)
			continue
		}
		p.take(owner, c)
		p.next = c.add(one)
		return c, true
	}
	// Unreachable while free() is right; failing closed beats looping.
	return u128{}, false
}
