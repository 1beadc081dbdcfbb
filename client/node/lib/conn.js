// One connection to the daemon over its Unix socket (SP REQ over IPC, by
// hand on net.Socket): many requests in flight, matched by SP id; dialing
// per the client rules (docs/protocol.md, "Client rules", R1): a failed dial
// fails at once with a message naming the socket and the fix, and the next
// dial is due only after a backoff (50 ms doubling to 2 s, with jitter; reset
// on success), so calls made before then fail at once and never wait.
//
// A call is {spId, frame, retrySafe, resends, first, resolve(replyBody),
// reject(err)}; its deadline is its owner's (the client's timer). A call
// whose connection is lost before its reply is sent again on a new
// connection when it is retry-safe (a Get, Ping...), else fails with an
// UnavailableError marked `unreachable` (the request may or may not have been
// applied). Before the calls that waited for a connection are sent, the
// owner's `onConnect()` may send calls marked `first` and wait for them (R2:
// pending invalidations go before anything else).
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const sp = require('./sp');
const { PermissionDeniedError, UnavailableError, ProtocolError } = require('./errors');

const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 2000;
const MAX_RESENDS = 3;

function nowMs() {
  return performance.now();
}

function nameOf(file, id) {
  try {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === id) return f[0];
    }
  } catch {
    // no such file: the number will do
  }
  return String(id);
}

/** Returns the error for a failed dial of `path` (R1): it names the path and the fix. */
function dialError(path, err) {
  const how = 'start nearcached there, or set NEARCACHE_URL (or pass a url) to reach another daemon';
  let e;
  switch (err.code) {
    case 'ENOENT': {
      const dir = require('node:path').dirname(path);
      const what = fs.existsSync(dir) ? 'the socket file does not exist' : `neither the socket file nor its directory ${dir} exists`;
      e = new UnavailableError(`no daemon is listening at ${path}: ${what} (${how})`);
      break;
    }
    case 'ECONNREFUSED':
      e = new UnavailableError(`nobody is listening on ${path}: a stale socket, the daemon is not running (${how})`);
      break;
    case 'EACCES':
    case 'EPERM': {
      // The socket's owner, group and mode, or its directory's when the
      // directory is what refuses (the socket cannot even be stat'ed).
      let who = 'its owner and mode unknown';
      let group = 'its group';
      for (const p of [path, require('node:path').dirname(path)]) {
        try {
          const st = fs.statSync(p);
          group = nameOf('/etc/group', st.gid);
          who = `${p === path ? '' : `its directory ${p}: `}${nameOf('/etc/passwd', st.uid)}:${group} 0${(st.mode & 0o777).toString(8)}`;
          break;
        } catch {
          // closed to us: try the directory
        }
      }
      let user = 'this process\'s user';
      try {
        user = os.userInfo().username;
      } catch {
        // no passwd entry
      }
      e = new PermissionDeniedError(`permission denied connecting to ${path} (${who}); this process runs as ${user}: add ${user} to the group ${group}, or set socket_group in the daemon's config`);
      break;
    }
    default:
      e = new UnavailableError(`cannot connect to ${path}: ${err.message}`);
  }
  e.cause = err;
  e.unreachable = true;
  return e;
}

class Conn {
  /** `path`: the daemon's socket; `onConnect()`: see the file comment. */
  constructor(path, onConnect) {
    this.path = path;
    this.onConnect = onConnect;
    this.sock = null;
    this.ready = false;
    this.gated = false; // onConnect() is running: only `first` calls go out
    this.inflight = new Map();
    this.waiting = [];
    this.lastDialError = null;
    this.nextDialAt = 0;
    this.backoff = 0;
    this.failedFile = ''; // the socket file as the failed dial found it
    this.closed = false;
    this.corked = false;
  }

  /** Sends `call`, dialing first if there is no connection. */
  send(call) {
    if (this.closed) {
      call.reject(Object.assign(new UnavailableError('the client is closed'), { unreachable: true }));
      return;
    }
    if (this.ready && (!this.gated || call.first)) {
      this.write(call);
      return;
    }
    if (this.sock === null && !this.due()) {
      call.reject(this.lastDialError); // R1: not due yet, fail at once
      return;
    }
    if (call.first) this.waiting.unshift(call);
    else this.waiting.push(call);
    if (this.sock === null) this.dial();
  }

  /**
   * Whether a dial is due (R1): the backoff is over, or the socket file
   * changed since the failed dial (a daemon that started again; one stat).
   */
  due() {
    return nowMs() >= this.nextDialAt || this.fileId() !== this.failedFile;
  }

  fileId() {
    const st = fs.statSync(this.path, { throwIfNoEntry: false, bigint: false });
    return st === undefined ? 'none' : `${st.dev}:${st.ino}:${st.ctimeMs}`;
  }

  /** Forgets `call` (its deadline passed or it was aborted). */
  forget(call) {
    this.inflight.delete(call.spId);
    const i = this.waiting.indexOf(call);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  write(call) {
    const s = this.sock;
    if (this.inflight.size === 0) s.ref(); // an idle connection keeps no process alive
    this.inflight.set(call.spId, call);
    if (!this.corked) {
      this.corked = true;
      s.cork();
      process.nextTick(() => {
        this.corked = false;
        s.uncork();
      });
    }
    s.write(call.frame);
  }

  /** Dials once (its caller checked that the backoff is over). */
  dial() {
    const s = net.createConnection({ path: this.path });
    this.sock = s;
    let hs = Buffer.alloc(0);
    const reader = new sp.FrameReader();
    s.write(sp.handshake());
    s.on('data', (chunk) => {
      if (s !== this.sock) return;
      if (!this.ready) {
        hs = Buffer.concat([hs, chunk]);
        if (hs.length < sp.HANDSHAKE_LEN) return;
        try {
          sp.checkHandshake(hs.subarray(0, sp.HANDSHAKE_LEN));
        } catch (e) {
          this.lost(s, e);
          return;
        }
        chunk = hs.subarray(sp.HANDSHAKE_LEN);
        this.up();
        if (chunk.length === 0) return;
      }
      reader.feed(chunk);
      try {
        for (let r = reader.next(); r !== null; r = reader.next()) {
          const call = this.inflight.get(r.spId);
          if (call === undefined) continue; // its deadline passed
          this.inflight.delete(r.spId);
          call.resolve(r.body);
        }
        if (this.inflight.size === 0) s.unref();
      } catch (e) {
        this.lost(s, e);
      }
    });
    s.on('error', (err) => this.lost(s, err));
    s.on('close', () => this.lost(s, null));
  }

  up() {
    this.ready = true;
    this.backoff = 0;
    this.lastDialError = null;
    this.nextDialAt = 0;
    const release = () => {
      this.gated = false;
      if (!this.ready) return;
      const w = this.waiting;
      this.waiting = [];
      for (const c of w) this.write(c);
    };
    const gate = this.onConnect ? this.onConnect() : null;
    if (gate) {
      this.gated = true;
      for (const c of this.waiting.filter((c) => c.first)) this.write(c);
      this.waiting = this.waiting.filter((c) => !c.first);
      gate.then(release, release);
    } else {
      release();
    }
  }

  /** The connection `s` failed or closed (err null: closed by the peer). */
  lost(s, err) {
    if (s !== this.sock) return;
    this.sock = null;
    s.destroy();
    const wasReady = this.ready;
    this.ready = false;
    this.gated = false;
    if (!wasReady) {
      // The dial failed: back off, and fail everything that waited for it.
      const e = err instanceof ProtocolError ? Object.assign(err, { unreachable: true })
        : dialError(this.path, err ?? Object.assign(new Error('connection closed during the handshake'), { code: 'ECONNRESET' }));
      this.backoff = this.backoff ? Math.min(this.backoff * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
      this.nextDialAt = nowMs() + this.backoff * (0.5 + Math.random() / 2);
      this.lastDialError = e;
      try {
        this.failedFile = this.fileId();
      } catch {
        this.failedFile = 'unreadable';
      }
      this.failWaiting(e);
      this.failInflight(e, false);
      return;
    }
    const why = err ? `: ${err.message}` : '';
    const e = new UnavailableError(`the connection to the daemon at ${this.path} was lost before the reply${why}; the request may or may not have been applied`);
    e.unreachable = true;
    e.cause = err ?? undefined;
    this.failInflight(e, true);
    if (this.waiting.length > 0 && !this.closed) this.dial(); // the last dial succeeded: due now
  }

  failInflight(e, resend) {
    const calls = [...this.inflight.values()];
    this.inflight.clear();
    for (const c of calls) {
      if (resend && c.retrySafe && c.resends < MAX_RESENDS) {
        c.resends++;
        this.waiting.push(c);
      } else {
        c.reject(e);
      }
    }
  }

  failWaiting(e) {
    const w = this.waiting;
    this.waiting = [];
    for (const c of w) c.reject(e);
  }

  /** Closes the connection; calls still waiting fail. */
  close() {
    this.closed = true;
    const e = Object.assign(new UnavailableError('the client is closed'), { unreachable: true });
    this.failWaiting(e);
    this.failInflight(e, false);
    if (this.sock) {
      const s = this.sock;
      this.sock = null;
      this.ready = false;
      s.end();
      s.destroy();
    }
  }
}

module.exports = { Conn, dialError, BACKOFF_MIN_MS, BACKOFF_MAX_MS };
