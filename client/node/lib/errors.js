// The error tree: every error the client throws is a NearcacheError with
// `code`, the gRPC status name ('UNAVAILABLE'), `status`, its number, and the
// daemon's (or the client's) message. Client-side failures map onto the same
// tree: a daemon that cannot be reached is UnavailableError, a reply that did
// not come in time DeadlineExceededError, bytes that are not the protocol
// ProtocolError.
'use strict';

const CODE_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND',
  'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED',
  'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

class NearcacheError extends Error {
  /** `status`: the gRPC status number (2, UNKNOWN, for client-side errors). */
  constructor(message, status, options) {
    super(message, options);
    this.status = status ?? new.target.status ?? 2;
    this.code = CODE_NAMES[this.status] ?? `CODE_${this.status}`;
  }

  get name() {
    return this.constructor.name;
  }
}

function sub(name, status) {
  const C = { [name]: class extends NearcacheError {} }[name];
  C.status = status;
  return C;
}

const CancelledError = sub('CancelledError', 1);
const InvalidArgumentError = sub('InvalidArgumentError', 3);
const DeadlineExceededError = sub('DeadlineExceededError', 4);
const NotFoundError = sub('NotFoundError', 5);
const PermissionDeniedError = sub('PermissionDeniedError', 7);
const ResourceExhaustedError = sub('ResourceExhaustedError', 8);
const FailedPreconditionError = sub('FailedPreconditionError', 9);
const AbortedError = sub('AbortedError', 10);
const UnimplementedError = sub('UnimplementedError', 12);
const InternalError = sub('InternalError', 13);
const UnavailableError = sub('UnavailableError', 14);
const ProtocolError = sub('ProtocolError', 13);

const BY_STATUS = new Map([
  [1, CancelledError], [3, InvalidArgumentError], [4, DeadlineExceededError], [5, NotFoundError],
  [7, PermissionDeniedError], [8, ResourceExhaustedError], [9, FailedPreconditionError],
  [10, AbortedError], [12, UnimplementedError], [13, InternalError], [14, UnavailableError],
]);

/** Returns the error for a reply's status and message. */
function errorFor(status, message) {
  const C = BY_STATUS.get(status) ?? NearcacheError;
  return new C(message || CODE_NAMES[status] || `status ${status}`, status);
}

module.exports = {
  CODE_NAMES, NearcacheError, CancelledError, InvalidArgumentError, DeadlineExceededError,
  NotFoundError, PermissionDeniedError, ResourceExhaustedError, FailedPreconditionError,
  AbortedError, UnimplementedError, InternalError, UnavailableError, ProtocolError, errorFor,
};
