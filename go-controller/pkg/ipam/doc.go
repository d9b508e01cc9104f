// Package ipam allocates node subnets out of cluster CIDRs
// (SubnetAllocator) and addresses inside one subnet (IPAllocator).
//
// Both allocators are pure in-memory bookkeeping: they know nothing about
// Kubernetes or OVN, so the controller can rebuild them on restart by
// replaying the allocations recorded in the API (Reserve / AllocateStatic)
// before handing out anything new. Owners are opaque, non-empty strings
// ("namespace/name", a pod UID, a node name); every operation is idempotent
// per owner so a retried reconcile never leaks an address.
//
// IPv4 and IPv6 are handled by the same code. Nothing is sized by the
// address space: an allocator keeps a map of what is in use plus a cursor,
// and scans forward from the cursor, wrapping once, for the next free slot.
// Memory is O(used + excluded ranges), so an IPv6 /64 costs no more than
// an IPv4 /24 with the same number of pods. Allocate is amortised O(1)
// while the cursor walks through free space and O(used) in the worst case
// (a nearly full subnet right after wrapping), which for IPv4 /24s, or
// even /16s, is microseconds to a millisecond. Lookups and releases are
// O(1); checking a requested address against excluded ranges is
// O(log ranges).
//
// The cursor continues after the last allocation instead of restarting at
// the lowest free slot, and the most recently released slot is skipped
// while any other is free, so a just-released address (or node subnet) is
// not handed to the next pod (or node) while others are free. That keeps stale
// ARP/neighbour entries, conntrack state and routes from pointing a new
// workload at traffic meant for its predecessor.
//
// Counts that can exceed int (an IPv6 /64 has 2^64 addresses) saturate at
// math.MaxInt; they are for capacity reporting, not arithmetic.
package ipam
