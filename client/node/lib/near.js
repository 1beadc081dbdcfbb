// The near tier: the C client's own (client/near.c over common/ring.c) in an
// N-API addon (native/near_addon.c), one per client. When the addon is not
// built, a client's near tier serves nothing and nearStats().problem says
// why; everything else works.
'use strict';

let addon = null;
let Near = null;
let missing = '';
try {
  addon = require('../build/Release/nearcache_near.node');
  ({ Near } = addon);
} catch (e) {
  missing = `the near tier's addon is not built (${e.message.split('\n')[0]}); ` +
    'npm 11 runs a dependency\'s install script only when allowed: `npm install-scripts approve ' +
    'nearcache`, then `npm rebuild nearcache` (docs/node.md, Install)';
}

const DEFAULT_NEAR_BYTES = 64 * 1024 * 1024;
const DEFAULT_NEAR_MAX_TTL = 60; // seconds
const OUT_BYTES = 16 * 1024; // values up to this size come back through one buffer

class NearTier {
  constructor(ringPath, maxBytes, maxTtlMs) {
    this.ringPath = ringPath;
    this.scratch = new Float64Array(3);
    this.out = Buffer.alloc(OUT_BYTES);
    this.n = Near ? new Near(ringPath, maxBytes, maxTtlMs, this.scratch, this.out) : null;
    this.problem = missing;
  }

  /** Returns a Buffer (hit), null (a negative entry: known absent) or undefined (miss). */
  get(ns, key) {
    if (this.n === null) return undefined;
    const r = this.n.get(ns, key);
    if (typeof r !== 'number') return r;
    const b = Buffer.allocUnsafe(r); // from Node's pool when small
    this.out.copy(b, 0, 0, r);
    return b;
  }

  /** Like get(), but a hit's value as a string (UTF-8). */
  getString(ns, key) {
    return this.n === null ? undefined : this.n.getString(ns, key);
  }

  /** The hit's time left in ms, after a get() that hit. */
  lastTtlMs() {
    return this.scratch[0];
  }

  /** The ticket to fill with, taken before the request is sent. */
  ticket() {
    if (this.n === null) return null;
    this.n.ticket();
    const s = this.scratch;
    return [s[0], s[1], s[2]];
  }

  /**
   * Keeps what a Get's reply may put in the tier (near_keep_of: a plain
   * value, or a negative entry with its time left), unless the ticket is void.
   */
  offer(t, ns, key, get, found) {
    if (t === null) return;
    const k = addon.keepOf(found, Boolean(get.negative), Boolean(get.stale), Boolean(get.lease), get.ttlMs);
    if (k !== 0) this.fill(t, ns, key, k === 1 ? get.value : null, get.ttlMs);
  }

  /** Keeps value (null: known absent) for at most min(ttlMs, the tier's max; 0: no TTL). */
  fill(t, ns, key, value, ttlMs) {
    this.n.fill(t[0], t[1], t[2], ns, key, value, ttlMs);
  }

  drop(ns, key) {
    if (this.n !== null) this.n.drop(ns, key);
  }

  dropNs(ns) {
    if (this.n !== null) this.n.drop(ns);
  }

  /** Empties the tier and refuses fills ticketed before: an own invalidation was kept (R2). */
  forget() {
    if (this.n !== null) this.n.forget();
  }

  stats() {
    if (this.n === null) {
      return { hits: 0, misses: 0, entries: 0, bytes: 0, evictions: 0, flushes: 0, laps: 0,
        fillsRefused: 0, serving: false, problem: this.problem };
    }
    return this.n.stats();
  }

  close() {
    if (this.n !== null) this.n.close();
    this.n = null;
  }
}

module.exports = { NearTier, DEFAULT_NEAR_BYTES, DEFAULT_NEAR_MAX_TTL, addon };
