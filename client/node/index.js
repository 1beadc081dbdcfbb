// nearcache for Node.js: the CommonJS entry (index.mjs re-exports it for
// `import`, so both load one copy of the classes). See docs/node.md.
'use strict';
const { Client, connect, DEFAULT_URL } = require('./lib/client');
const { cached, json, buffer } = require('./lib/cached');
const errors = require('./lib/errors');

module.exports = {
  connect, Client, cached, codecs: { json, buffer }, DEFAULT_URL,
  NearcacheError: errors.NearcacheError,
  CancelledError: errors.CancelledError,
  InvalidArgumentError: errors.InvalidArgumentError,
  DeadlineExceededError: errors.DeadlineExceededError,
  NotFoundError: errors.NotFoundError,
  PermissionDeniedError: errors.PermissionDeniedError,
  ResourceExhaustedError: errors.ResourceExhaustedError,
  FailedPreconditionError: errors.FailedPreconditionError,
  AbortedError: errors.AbortedError,
  UnimplementedError: errors.UnimplementedError,
  InternalError: errors.InternalError,
  UnavailableError: errors.UnavailableError,
  ProtocolError: errors.ProtocolError,
};
