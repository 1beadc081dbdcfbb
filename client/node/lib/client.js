// The client: connect(), the methods of docs/protocol.md as Promises, the
// near tier in front of Get and MGet, read-through with leases (fetch), and
// the client rules R1-R3 (docs/protocol.md, "Client rules"): fail fast on
// dial (lib/conn.js), pending invalidations kept and sent first, near-tier
// counters reported to the daemon.
'use strict';
const crypto = require('node:crypto');
const { Conn } = require('./conn');
const sp = require('./sp');
const { encodeRequest, decodeReply, v1 } = require('./pb');
const E = require('./errors');
const { NearTier, DEFAULT_NEAR_BYTES, DEFAULT_NEAR_MAX_TTL } = require('./near');

const DEFAULT_URL = 'ipc:///run/nearcache/nearcached.sock';
const DEFAULT_TIMEOUT_MS = 1000;
const SMALL_REQUEST = 64 * 1024;
const REPLY_SLACK_MS = 50; // a write's DEADLINE_EXCEEDED comes a little after its budget
const DEFAULT_MAX_PENDING = 1000;
const REPORT_MS = 1000;

const SOURCES = ['unspecified', 'l1', 'l2'];
const LEASES = ['none', 'granted', 'waited', 'busy'];
const OK = 0;
const NOT_FOUND = 5;

/** Returns the URL to use: `url`, else $NEARCACHE_URL, else the packaged socket. */
function resolveUrl(url) {
  return url || process.env.NEARCACHE_URL || DEFAULT_URL;
}

/** Returns the socket path of an ipc:// URL; throws InvalidArgumentError for another. */
function ipcPath(url) {
  if (!url.startsWith('ipc://') || url.length === 6) {
    throw new E.InvalidArgumentError(`${url}: the Node client speaks to the daemon's ipc:// socket only (e.g. ${DEFAULT_URL})`);
  }
  return url.slice(6);
}

function bytes(v, what) {
  if (typeof v === 'string') return Buffer.from(v);
  if (v instanceof Uint8Array) return v;
  throw new TypeError(`${what} must be a string or a Buffer, not ${v === null ? 'null' : typeof v}`);
}

function toMs(seconds, what) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0)
    throw new TypeError(`${what} must be a positive number of seconds, got ${seconds}`);
  return Math.ceil(seconds * 1000);
}

function copy(b) {
  // A decoded value is a view of the frame it came in: copy it, so that a
  // value the caller keeps holds no more memory than its own bytes.
  return Buffer.from(b);
}


/**
 * The error of a failed MSet: with `notStored` and `maybeStored` (the keys,
 * as Buffers) when the daemon's answer named the entries it did not store.
 */
function msetError(r, list) {
  const err = E.errorFor(r.code, r.message);
  const failed = r.mset?.failed;
  if (failed && failed.length > 0) {
    err.notStored = [];
    err.maybeStored = [];
    for (const f of failed) {
      const into = f.maybeStored ? err.maybeStored : err.notStored;
      for (const i of f.index) if (i < list.length) into.push(list[i].key);
    }
  }
  return err;
}
class Client {
  constructor(url, opts = {}) {
    this.url = resolveUrl(url);
    this.path = ipcPath(this.url);
    this.timeout = opts.timeout ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeout > 0)) throw new TypeError(`timeout must be a positive number of ms, got ${opts.timeout}`);
    this.strict = Boolean(opts.strict);
    this.maxPending = opts.maxPendingInvalidations ?? DEFAULT_MAX_PENDING;
    this.n = 0;
    this.maxRequest = 0; // learned from Ping before the first request over 64 KiB
    this.pending = []; // R2: [{bump: bool, ns, key}]
    this.overflowNs = new Map(); // R2: namespaces whose dropped invalidations become bumps
    this.warned = false;
    this.retrier = null;
    this.flights = new Map(); // fetch(): one load per key in this process
    this.conn = new Conn(this.path, () => this.sendPending());
    const nearBytes = opts.nearBytes ?? DEFAULT_NEAR_BYTES;
    if (!Number.isSafeInteger(nearBytes) || nearBytes < 0)
      throw new TypeError(`nearBytes must be a whole number of bytes >= 0, got ${nearBytes}`);
    this.near = nearBytes > 0 ? new NearTier(opts.nearRing ?? `${this.path}.ring`, nearBytes,
      toMs(opts.nearMaxTtl ?? DEFAULT_NEAR_MAX_TTL, 'nearMaxTtl')) : null;
    this.closed = false;
    this.report = null; // R3: {id, timer, sent: [hits, misses, fillsRefused], taken}
    if (this.near !== null) this.startReports(REPORT_MS);
  }

  // --- R3: near-tier reports ---------------------------------------------------

  /**
   * Every interval (a timer that keeps no process alive, never the hit
   * path), sends the near tier's counters with NearReport on the connection
   * there is, when they changed since the last report. A daemon that does
   * not know the method ends the reports; one that wants another interval
   * gets it.
   */
  startReports(ms) {
    if (this.report === null) this.report = { id: reporterId(), timer: null, sent: [0, 0, 0], ms, taken: false };
    clearInterval(this.report.timer);
    this.report.ms = ms;
    this.report.timer = setInterval(() => this.sendReport().catch(() => {}), ms);
    this.report.timer.unref();
  }

  async sendReport() {
    const rep = this.report;
    if (rep === null || this.near === null || !this.conn.ready) return;
    const s = this.near.stats();
    const now = [s.hits, s.misses, s.fillsRefused];
    if (now.every((v, i) => v === rep.sent[i])) return;
    // reportedBefore: a restarted daemon takes this report as the starting point
    const r = await this.rpc('nearReport', { reporter: rep.id, pid: process.pid, hits: now[0], misses: now[1], fillsRefused: now[2], reportedBefore: rep.taken }, null, true);
    if (r.code === OK) {
      rep.sent = now;
      rep.taken = true;
      const want = r.nearReport?.intervalMs || REPORT_MS;
      if (want !== rep.ms) this.startReports(Math.max(want, 100));
    } else if (r.code === 12) { // UNIMPLEMENTED: a daemon older than NearReport
      clearInterval(rep.timer);
    } else if (r.code === 9) { // FAILED_PRECONDITION: another process has this id
      rep.id = reporterId();
      rep.taken = false;
    }
  }

  // --- calls ----------------------------------------------------------------

  /** Sends a Request (object) and resolves with its Reply; rejects with a NearcacheError. */
  rpc(method, msg, opts, retrySafe, first = false) {
    const timeout = opts?.timeout ?? this.timeout;
    const id = ++this.n;
    const body = encodeRequest({ id, timeoutMs: Math.ceil(timeout), [method]: msg });
    return this.send(body, id, timeout, opts?.signal, retrySafe, first);
  }

  /** `first`: an R2 invalidation, sent before the calls that wait; `sized`: checked against the daemon's cap. */
  send(body, id, timeout, signal, retrySafe, first, sized = false) {
    if (body.length > SMALL_REQUEST && !sized) return this.sendBig(body, id, timeout, signal, retrySafe, first);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const call = {
        spId: sp.requestId(id),
        frame: sp.frame(sp.requestId(id), body),
        retrySafe,
        first,
        resends: 0,
        timer: null,
        resolve: null,
        reject: null,
      };
      const done = () => {
        clearTimeout(call.timer);
        if (signal) signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        this.conn.forget(call);
        reject(abortError(signal));
      };
      call.resolve = (b) => {
        done();
        let r;
        try {
          r = decodeReply(b);
        } catch (e) {
          reject(new E.ProtocolError(`the daemon's reply is not a nearcache.v1.Reply: ${e.message}`));
          return;
        }
        resolve(r);
      };
      call.reject = (e) => {
        done();
        reject(e);
      };
      call.timer = setTimeout(() => {
        this.conn.forget(call);
        call.reject(new E.DeadlineExceededError(`no reply from the daemon within ${timeout} ms`));
      }, timeout + REPLY_SLACK_MS);
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
      this.conn.send(call);
    });
  }

  async sendBig(body, id, timeout, signal, retrySafe, first) {
    if (this.maxRequest === 0) this.maxRequest = (await this.ping({ timeout, signal })).maxRequestSize;
    if (body.length > this.maxRequest) {
      throw new E.ResourceExhaustedError(`request of ${body.length} bytes is larger than the daemon accepts (${this.maxRequest} bytes; see max_value_size)`);
    }
    return this.send(body, id, timeout, signal, retrySafe, first, true);
  }

  /** Resolves with the method's result; rejects on any status but OK. */
  async ok(method, msg, opts, retrySafe) {
    const r = await this.rpc(method, msg, opts, retrySafe);
    if (r.code !== OK) throw E.errorFor(r.code, r.message);
    return r;
  }

  /**
   * Sends raw Request bytes (a conformance case) and resolves with the Reply,
   * whatever its code.
   */
  request(raw, opts) {
    const timeout = opts?.timeout ?? this.timeout;
    return this.send(Buffer.from(raw), ++this.n, timeout, opts?.signal, false, false);
  }

  // --- reads ----------------------------------------------------------------

  /** Resolves with the value, or null when the key is absent. */
  async get(ns, key, opts) {
    if (this.near !== null) {
      const v = this.near.get(ns, key);
      if (v !== undefined) return v;
    }
    const r = await this.getReply(ns, key, opts, false);
    return r.found ? r.value : null;
  }

  /** A Get with its options, resolving with everything the daemon (or the near tier) said. */
  async getEx(ns, key, opts = {}) {
    if (this.near !== null && !opts.slideTtl) {
      const v = this.near.get(ns, key);
      if (v !== undefined) {
        return { value: v, found: v !== null, source: 'near', ttlMs: this.near.lastTtlMs(),
          stale: false, staleMs: 0, negative: v === null, lease: 'none', leaseToken: null };
      }
    }
    return this.getReply(ns, key, opts, true);
  }

  async getReply(ns, key, opts, ex) {
    const nsB = bytes(ns, 'ns');
    const keyB = bytes(key, 'key');
    const msg = { ns: nsB, key: keyB };
    if (opts?.lease) msg.lease = true;
    if (opts?.leaseTtl) msg.leaseTtlMs = toMs(opts.leaseTtl, 'leaseTtl');
    if (opts?.slideTtl) msg.slideTtlMs = toMs(opts.slideTtl, 'slideTtl');
    const t = this.near !== null && !opts?.slideTtl ? this.near.ticket() : null;
    const r = await this.rpc('get', msg, opts, !opts?.lease);
    if (r.code !== OK && r.code !== NOT_FOUND) throw E.errorFor(r.code, r.message);
    const g = r.get ?? {};
    // A GRANTED or BUSY lease has no value, unless a stale one to refresh.
    const found = r.code === OK && ((g.lease !== 1 && g.lease !== 3) || Boolean(g.stale));
    const value = found ? copy(g.value ?? Buffer.alloc(0)) : null;
    if (t !== null) this.near.offer(t, nsB, keyB, { value, ttlMs: g.ttlMs ?? 0, stale: g.stale, lease: g.lease, negative: g.negative }, found);
    if (!ex) return { found, value };
    return {
      value, found, source: SOURCES[g.source ?? 0] ?? 'unspecified', ttlMs: g.ttlMs ?? 0,
      stale: Boolean(g.stale), staleMs: g.staleMs ?? 0, negative: Boolean(g.negative),
      lease: LEASES[g.lease ?? 0] ?? 'none', leaseToken: g.leaseToken?.length ? copy(g.leaseToken) : null,
    };
  }

  /** Resolves with one value (or null) per key, in order. */
  async mget(ns, keys, opts) {
    const nsB = bytes(ns, 'ns');
    const out = new Array(keys.length);
    const ask = [];
    for (let i = 0; i < keys.length; i++) {
      const v = this.near !== null ? this.near.get(ns, keys[i]) : undefined;
      if (v === undefined) ask.push(i);
      else out[i] = v;
    }
    if (ask.length === 0) return out;
    const keyB = ask.map((i) => bytes(keys[i], 'key'));
    const t = this.near !== null ? this.near.ticket() : null;
    const r = await this.ok('mget', { ns: nsB, keys: keyB }, opts, true);
    const items = r.mget?.items ?? [];
    if (items.length !== ask.length) throw new E.ProtocolError(`MGet of ${ask.length} keys answered ${items.length} items`);
    for (let j = 0; j < ask.length; j++) {
      const it = items[j];
      const g = it.get ?? {};
      const value = it.found ? copy(g.value ?? Buffer.alloc(0)) : null;
      if (t !== null) this.near.offer(t, nsB, keyB[j], { value, ttlMs: g.ttlMs ?? 0, stale: g.stale, lease: 0, negative: g.negative }, Boolean(it.found));
      out[ask[j]] = value;
    }
    return out;
  }

  // --- writes ---------------------------------------------------------------

  /** Stores a value; resolves with the TTL applied, in seconds. */
  async set(ns, key, value, opts = {}) {
    const msg = { ns: bytes(ns, 'ns'), key: bytes(key, 'key'), value: bytes(value, 'value') };
    if (opts.ttl !== undefined) msg.ttlMs = toMs(opts.ttl, 'ttl');
    if (opts.leaseToken) msg.leaseToken = bytes(opts.leaseToken, 'leaseToken');
    if (opts.negative) msg.negative = true;
    if (opts.staleWhileRevalidate) msg.staleWhileRevalidateMs = toMs(opts.staleWhileRevalidate, 'staleWhileRevalidate');
    if (this.near !== null) this.near.drop(ns, key);
    const r = await this.ok('set', msg, opts, false);
    return (r.set?.ttlMs ?? 0) / 1000;
  }

  /**
   * Stores many values of one namespace; resolves with the number stored.
   * On a Redis Cluster some hash slots may fail while others are stored: the
   * error then lists the keys to retry in `notStored` and `maybeStored`.
   */
  async mset(ns, entries, opts = {}) {
    const nsB = bytes(ns, 'ns');
    const ttl = opts.ttl !== undefined ? toMs(opts.ttl, 'ttl') : 0;
    const list = [];
    const iter = entries instanceof Map || Array.isArray(entries) ? entries : Object.entries(entries);
    for (const e of iter) {
      const [k, v, t] = Array.isArray(e) ? [e[0], e[1], undefined] : [e.key, e.value, e.ttl];
      list.push({ key: bytes(k, 'key'), value: bytes(v, 'value'), ttlMs: t !== undefined ? toMs(t, 'ttl') : ttl });
      if (this.near !== null) this.near.drop(nsB, list[list.length - 1].key);
    }
    const r = await this.rpc('mset', { ns: nsB, entries: list }, opts, false);
    if (r.code !== OK) throw msetError(r, list);
    return r.mset?.stored ?? 0;
  }

  /**
   * Deletes a key; resolves with whether Redis held it. With `leaseToken`, it
   * releases that lease instead. A plain Delete the daemon cannot be reached
   * for is kept and sent once it answers (R2): it resolves with false then,
   * unless `strict` (here or at connect) makes it reject with UnavailableError.
   */
  async delete(ns, key, opts = {}) {
    const msg = { ns: bytes(ns, 'ns'), key: bytes(key, 'key') };
    if (opts.leaseToken) msg.leaseToken = bytes(opts.leaseToken, 'leaseToken');
    if (this.near !== null) this.near.drop(ns, key);
    try {
      const r = await this.ok('delete', msg, opts, false);
      return Boolean(r.delete?.existed);
    } catch (e) {
      if (!opts.leaseToken && this.keep(e, false, msg.ns, msg.key, opts)) return false;
      throw e;
    }
  }

  /** Drops every key of a namespace on every host; resolves with its new version (0: queued, R2). */
  async bump(ns, opts = {}) {
    const nsB = bytes(ns, 'ns');
    if (this.near !== null) this.near.dropNs(nsB);
    try {
      const r = await this.ok('bumpNamespace', { ns: nsB }, opts, false);
      return r.bumpNamespace?.version ?? 0;
    } catch (e) {
      if (this.keep(e, true, nsB, null, opts)) return 0;
      throw e;
    }
  }

  // --- R2: pending invalidations ----------------------------------------------

  /**
   * Keeps an invalidation that failed because the daemon is unreachable.
   * Returns whether the caller should resolve normally (not strict).
   */
  keep(e, bump, ns, key, opts) {
    if (!e.unreachable || this.closed) return false;
    if (this.pending.length >= this.maxPending) {
      // Past the bound, the namespace is kept instead: bumped on reconnect.
      this.overflowNs.set(Buffer.from(ns).toString('latin1'), Buffer.from(ns));
    } else {
      this.pending.push({ bump, ns: Buffer.from(ns), key: key && Buffer.from(key) });
    }
    // no ring slot will name what the daemon never heard: a Get in flight may hold the old value
    if (this.near !== null) this.near.forget();
    this.retryPending();
    if (opts.strict ?? this.strict) return false;
    if (!this.warned) {
      this.warned = true;
      process.emitWarning(`nearcache: the daemon at ${this.path} is unreachable (${e.message}); ` +
        'invalidations are kept and sent first when it answers again', { code: 'NEARCACHE_QUEUED' });
    }
    return true;
  }

  /**
   * While invalidations are kept, tries every 50 ms to deliver them without
   * waiting for the application's next call (a Ping when a dial is due: the
   * connection sends them first).
   */
  retryPending() {
    if (this.retrier) return;
    this.retrier = setInterval(() => {
      if (this.pendingInvalidations === 0 || this.closed) {
        clearInterval(this.retrier);
        this.retrier = null;
      } else if (this.conn.sock === null && this.conn.due()) {
        this.ping().catch(() => {});
      }
    }, 50);
    this.retrier.unref();
  }

  /** Invalidations kept for the daemon (R2), not sent yet. */
  get pendingInvalidations() {
    return this.pending.length + this.overflowNs.size;
  }

  /** Sends the kept invalidations before anything else on a new connection (Conn's onConnect). */
  sendPending() {
    if (this.pending.length === 0 && this.overflowNs.size === 0) return null;
    const bumps = [...this.overflowNs.values()].map((ns) => ({ bump: true, ns, key: null }));
    const items = [...bumps, ...this.pending];
    this.overflowNs.clear();
    this.pending = [];
    const sends = items.map((it) => this.rpc(it.bump ? 'bumpNamespace' : 'delete',
      it.bump ? { ns: it.ns } : { ns: it.ns, key: it.key }, null, false, true)
      .then(() => null, (e) => (e.unreachable ? it : null)));
    return Promise.all(sends).then((left) => {
      const again = left.filter((x) => x !== null);
      this.pending = [...again, ...this.pending];
    });
  }

  // --- read-through ------------------------------------------------------------

  /**
   * Read-through with a lease: the value of (ns, key), loading it with
   * `loader()` (a Buffer, a string, or null: absent) and storing it when
   * this caller got the key's lease; one load per key across every process
   * and host while the lease holds. Options: ttl (seconds), leaseTtl,
   * negativeTtl (cache a null that long), failOpen (call the loader when the
   * daemon cannot be reached), timeout, signal.
   */
  fetch(ns, key, opts, loader) {
    if (typeof opts === 'function') [opts, loader] = [{}, opts];
    const fk = (typeof ns === 'string' ? ns : Buffer.from(ns).toString('latin1')) + '\0' +
      (typeof key === 'string' ? key : Buffer.from(key).toString('latin1'));
    let p = this.flights.get(fk);
    if (p === undefined) {
      p = this.fetchOnce(ns, key, opts ?? {}, loader).finally(() => this.flights.delete(fk));
      this.flights.set(fk, p);
    }
    return p;
  }

  async fetchOnce(ns, key, opts, loader) {
    let r;
    try {
      r = await this.getEx(ns, key, { lease: true, leaseTtl: opts.leaseTtl, timeout: opts.timeout, signal: opts.signal });
    } catch (e) {
      if (opts.failOpen && e.unreachable) return loaded(await loader());
      throw e;
    }
    if (r.found && r.lease !== 'granted') return r.value;
    if (r.negative) return null;
    if (r.lease !== 'granted') return loaded(await loader()); // BUSY: the holder is too slow
    let v;
    try {
      v = loaded(await loader());
    } catch (e) {
      await this.delete(ns, key, { leaseToken: r.leaseToken, timeout: opts.timeout }).catch(() => {});
      throw e;
    }
    const store = v === null
      ? (opts.negativeTtl ? this.set(ns, key, '', { ttl: opts.negativeTtl, negative: true, leaseToken: r.leaseToken, timeout: opts.timeout })
        : this.delete(ns, key, { leaseToken: r.leaseToken, timeout: opts.timeout }))
      : this.set(ns, key, v, { ttl: opts.ttl, leaseToken: r.leaseToken, timeout: opts.timeout });
    try {
      await store;
    } catch (e) {
      // ABORTED: written or deleted meanwhile, the value was not cached; the
      // daemon gone: the value is still the caller's. Bad arguments are not.
      if (e instanceof E.InvalidArgumentError || e instanceof E.ResourceExhaustedError) throw e;
    }
    return v;
  }

  // --- the rest ---------------------------------------------------------------

  /** Resolves with the daemon's counters and gauges, and Gets by namespace. */
  async stats(opts) {
    const r = await this.ok('stats', {}, opts, true);
    const stats = {};
    for (const s of r.stats?.stats ?? []) stats[s.name] = s.value;
    const namespaces = (r.stats?.namespaces ?? []).map((n) => ({
      ns: copy(n.ns ?? Buffer.alloc(0)), hits: n.hits ?? 0, misses: n.misses ?? 0,
      other: Boolean(n.other), truncated: Boolean(n.truncated),
    }));
    return { stats, namespaces };
  }

  /** Resolves with the daemon's Ping reply. */
  async ping(opts) {
    const r = await this.ok('ping', {}, opts, true);
    const p = r.ping ?? {};
    return {
      version: p.version ?? '', nodeId: p.nodeId ?? '', uptimeMs: p.uptimeMs ?? 0,
      redisUp: Boolean(p.redisUp), subscribed: Boolean(p.subscribed),
      l1Serving: Boolean(p.l1Serving), maxRequestSize: p.maxRequestSize ?? 0,
      protocolVersion: p.protocolVersion || 1, redisError: p.redisError ?? '',
    };
  }

  /** The near tier's counters, or null when the client has none (nearBytes: 0). */
  nearStats() {
    return this.near === null ? null : this.near.stats();
  }

  /** Sends the invalidations still kept (when the daemon answers), then closes. */
  async close() {
    if (this.closed) return;
    if (this.pendingInvalidations > 0) await this.ping().catch(() => {});
    if (this.report !== null) {
      clearInterval(this.report.timer);
      await this.sendReport().catch(() => {});
    }
    this.closed = true;
    clearInterval(this.retrier);
    this.conn.close();
    if (this.near !== null) this.near.close();
  }
}

/** A random non-zero reporter id (below 2^53: exact as a number). */
function reporterId() {
  const [hi, lo] = crypto.getRandomValues(new Uint32Array(2));
  return ((hi & 0x1fffff) * 2 ** 32 + lo) || 1;
}

function loaded(v) {
  if (v === null || v === undefined) return null;
  return bytes(v, 'the loader\'s value');
}

function abortError(signal) {
  const reason = signal.reason;
  if (reason?.name === 'TimeoutError') return new E.DeadlineExceededError('the call\'s signal timed out', 4, { cause: reason });
  return new E.CancelledError('the call was aborted', 1, { cause: reason });
}

/**
 * Returns a Client for the daemon at `url` ($NEARCACHE_URL, else the packaged
 * socket). It dials at once and rejects when the daemon cannot be reached
 * (R1), unless `lazy`.
 */
async function connect(url, opts = {}) {
  const c = new Client(url, opts);
  if (!opts.lazy) {
    try {
      await c.ping();
    } catch (e) {
      await c.close();
      throw e;
    }
  }
  return c;
}

module.exports = { Client, connect, resolveUrl, DEFAULT_URL, v1 };
