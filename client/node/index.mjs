// nearcache for Node.js: the ES module entry, over the CommonJS one.
import nc from './index.js';

export const {
  connect, Client, cached, codecs, DEFAULT_URL, NearcacheError, CancelledError,
  InvalidArgumentError, DeadlineExceededError, NotFoundError, PermissionDeniedError,
  ResourceExhaustedError, FailedPreconditionError, AbortedError, UnimplementedError,
  InternalError, UnavailableError, ProtocolError,
} = nc;
export default nc;
