package nearcache

import (
	"errors"

	"github.com/nearcache/nearcache/client/go/internal/pb"
)

// Code is a gRPC status code, as the daemon sends it in Reply.code.
type Code int32

// The status codes (gRPC's names and numbers).
const (
	OK                 Code = 0
	Canceled           Code = 1
	Unknown            Code = 2
	InvalidArgument    Code = 3
	DeadlineExceeded   Code = 4
	NotFound           Code = 5
	AlreadyExists      Code = 6
	PermissionDenied   Code = 7
	ResourceExhausted  Code = 8
	FailedPrecondition Code = 9
	Aborted            Code = 10
	OutOfRange         Code = 11
	Unimplemented      Code = 12
	Internal           Code = 13
	Unavailable        Code = 14
	DataLoss           Code = 15
	Unauthenticated    Code = 16
)

// String returns the code's name as the protocol spells it (NOT_FOUND).
func (c Code) String() string { return pb.Code(c).String() }

// Error is every error the client returns for a call that failed: a status
// code, the daemon's message (or the client's own, for errors it found
// itself), and the cause when there is one (a context's error, a socket
// error). errors.Is(err, ErrNotFound) and the other sentinels compare codes.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error returns "nearcache: CODE: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return "nearcache: " + e.Code.String()
	}
	return "nearcache: " + e.Code.String() + ": " + e.Message
}

// Unwrap returns the cause, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == e.Code
}

// MSetError is the error of an MSet whose answer named the entries it did
// not store (on a Redis Cluster, one hash slot can fail while the others
// are stored): retry exactly NotStored and MaybeStored (the write of those
// may have run; retrying it is safe). Every other key was stored.
// errors.Is and errors.As see the *Error under it.
type MSetError struct {
	Err         *Error
	NotStored   []string
	MaybeStored []string
}

// Error returns the daemon's error.
func (e *MSetError) Error() string { return e.Err.Error() }

// Unwrap returns the *Error.
func (e *MSetError) Unwrap() error { return e.Err }

// Sentinels for errors.Is: one per status code a caller handles apart.
var (
	ErrNotFound           = &Error{Code: NotFound}
	ErrUnavailable        = &Error{Code: Unavailable}
	ErrDeadlineExceeded   = &Error{Code: DeadlineExceeded}
	ErrCanceled           = &Error{Code: Canceled}
	ErrInvalidArgument    = &Error{Code: InvalidArgument}
	ErrPermissionDenied   = &Error{Code: PermissionDenied}
	ErrResourceExhausted  = &Error{Code: ResourceExhausted}
	ErrFailedPrecondition = &Error{Code: FailedPrecondition}
	ErrAborted            = &Error{Code: Aborted}
	ErrUnimplemented      = &Error{Code: Unimplemented}
	ErrInternal           = &Error{Code: Internal}
)

// ErrQueued says that an invalidation (a Delete without a lease token, a
// Bump) could not reach the daemon and is kept by the client, which sends it
// before anything else once the daemon answers again. It is not a failure:
// a caller whose write is committed may ignore it. errors.Is(err, ErrQueued)
// matches the errors Delete and Bump return then; WithStrictInvalidation
// makes them fail with ErrUnavailable instead.
var ErrQueued = errors.New("nearcache: invalidation queued until the daemon answers again")

// The two NOT_FOUND replies of a Get, answered without allocating.
var (
	errNotFound    = &Error{Code: NotFound, Message: "not found"}
	errKnownAbsent = &Error{Code: NotFound, Message: "known absent"}
	errClosed      = &Error{Code: Unavailable, Message: "client is closed"}
)

// replyError returns the error of a reply's code and message; a Get's two
// NOT_FOUND replies allocate nothing.
func replyError(r *reply) error {
	if r.code == NotFound {
		switch string(r.message) {
		case "not found":
			return errNotFound
		case "known absent":
			return errKnownAbsent
		}
	}
	return &Error{Code: r.code, Message: string(r.message)}
}
