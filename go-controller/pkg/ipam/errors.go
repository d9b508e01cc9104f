package ipam

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these
// with the subnet, address and owners involved, so callers branch with
// errors.Is and log the message as is.
var (
	// ErrExhausted: nothing is left to allocate.
	ErrExhausted = errors.New("exhausted")

	// ErrConflict: the requested address or subnet is held by another
	// owner; the message names that owner.
	ErrConflict = errors.New("held by another owner")

	// ErrOutOfRange: the requested address or subnet is not one the
	// allocator hands out (outside the subnet or cluster CIDRs, excluded,
	// network or broadcast address, wrong host prefix length or
	// alignment). On restart this means the recorded allocation predates
	// a configuration change and a new one must be allocated.
	ErrOutOfRange = errors.New("out of range")

	// ErrOwnerHasOther: the owner already holds a different address or
	// subnet; the caller must release it first, because silently moving
	// a running workload to a new address would break it.
	ErrOwnerHasOther = errors.New("owner already holds a different allocation")
)
