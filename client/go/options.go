package nearcache

import "time"

// Defaults of the options.
const (
	DefaultURL          = "ipc:///run/nearcache/nearcached.sock"
	DefaultTimeout      = time.Second
	DefaultNearBytes    = 64 << 20
	DefaultNearMaxTTL   = 60 * time.Second
	DefaultPendingLimit = 1000
)

type options struct {
	timeout      time.Duration
	nearBytes    int64
	nearMaxTTL   time.Duration
	nearRing     string
	lazy         bool
	failOpen     bool
	strict       bool
	pendingLimit int
	leaseTTL     time.Duration
	report       bool
}

// Option configures a Client (see Dial).
type Option func(*options)

// WithTimeout sets each call's budget when its context has no deadline
// (default 1 s). It is sent to the daemon as the request's timeout_ms.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithNearBytes bounds the near tier, this process's copy of hot values, in
// bytes (default 64 MiB); 0 turns it off.
func WithNearBytes(n int64) Option { return func(o *options) { o.nearBytes = n } }

// WithNearMaxTTL caps how long the near tier keeps an entry (default 60 s).
func WithNearMaxTTL(d time.Duration) Option { return func(o *options) { o.nearMaxTTL = d } }

// WithNearRing names the daemon's ring file (default: the socket's path
// with ".ring" added).
func WithNearRing(path string) Option { return func(o *options) { o.nearRing = path } }

// WithLazyDial makes Dial return without connecting; the first call
// connects. Without it Dial fails at once when the daemon cannot be reached.
func WithLazyDial() Option { return func(o *options) { o.lazy = true } }

// WithFailOpen makes Fetch call its loader directly, caching nothing, when
// the daemon cannot be reached (default: Fetch returns the error).
func WithFailOpen(on bool) Option { return func(o *options) { o.failOpen = on } }

// WithStrictInvalidation makes Delete and Bump fail with ErrUnavailable when
// the daemon cannot be reached, instead of queueing the invalidation and
// returning an error that matches ErrQueued.
func WithStrictInvalidation(on bool) Option { return func(o *options) { o.strict = on } }

// WithPendingLimit bounds the invalidations kept while the daemon is
// unreachable (default 1000). Past it the client remembers the namespaces
// of the dropped ones and bumps them on reconnect.
func WithPendingLimit(n int) Option { return func(o *options) { o.pendingLimit = n } }

// WithLeaseTTL sets how long a lease taken by Fetch lasts (default: the
// daemon's lease_ttl, 3 s); it should exceed the loader's time.
func WithLeaseTTL(d time.Duration) Option { return func(o *options) { o.leaseTTL = d } }

// WithNearReports turns the near tier's reports to the daemon (NearReport,
// at most once a second) on or off (default on).
func WithNearReports(on bool) Option { return func(o *options) { o.report = on } }
