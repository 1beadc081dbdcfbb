package nearcache

import "time"

// Source says where a value came from.
type Source int32

// The sources: the daemon's memory (L1), Redis (L2), this process's near tier.
const (
	SourceUnspecified Source = 0
	SourceL1          Source = 1
	SourceL2          Source = 2
	SourceNear        Source = 3
)

// LeaseState is what a Get with a lease found (docs/protocol.md, Leases).
type LeaseState int32

// The lease states.
const (
	LeaseNone    LeaseState = 0 // a hit, or no lease asked
	LeaseGranted LeaseState = 1 // a miss: load the value and SetEx it with LeaseToken
	LeaseWaited  LeaseState = 2 // another caller held the lease; its value is here
	LeaseBusy    LeaseState = 3 // another caller holds it and did not set in time: no value
)

// GetOptions are a GetEx's options.
type GetOptions struct {
	// Lease asks, on a miss in both tiers, for the key's lease (or waits for
	// its holder's value).
	Lease bool
	// LeaseTTL is how long a granted lease lasts (0: the daemon's lease_ttl).
	LeaseTTL time.Duration
	// SlideTTL keeps the key alive this long after each read (a sliding TTL;
	// such a Get always goes to the daemon).
	SlideTTL time.Duration
}

// GetResult is everything a Get answered. Value is nil when the key was not
// found and on a LeaseGranted or LeaseBusy reply without a stale value.
// Value is shared with the near tier: do not modify it.
type GetResult struct {
	Value      []byte
	Found      bool
	Source     Source
	TTL        time.Duration // the time the value has left (0: no TTL)
	Lease      LeaseState
	LeaseToken []byte
	Stale      bool
	StaleFor   time.Duration // under stale_if_error: since the daemon was caught up
	Negative   bool          // not found, and known absent
}

// SetOptions are a SetEx's options.
type SetOptions struct {
	// LeaseToken stores the value only if this lease is still valid (else
	// the error is ErrAborted and nothing is stored).
	LeaseToken []byte
	// Negative stores "known absent" for the TTL instead of the value.
	Negative bool
	// StaleWhileRevalidate serves the value, stale, this long past its TTL.
	StaleWhileRevalidate time.Duration
}

// PingInfo is what Ping answers.
type PingInfo struct {
	Version        string
	NodeID         string
	Uptime         time.Duration
	RedisUp        bool
	Subscribed     bool
	L1Serving      bool
	MaxRequestSize uint64
}
