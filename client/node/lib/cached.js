// cached(): the tutorial's read-through decorator for Node, over
// Client.fetch() (a lease per key: one load across every process and host).
// Values go through a codec, JSON by default; null (and undefined) results
// are cached as JSON null. A warm key is a near-tier hit: one call into the
// addon and the codec's decode, without a Promise of the client's.
'use strict';

// decodeString: the same decode from the value's bytes read as UTF-8 (a
// near-tier hit then makes no Buffer).
const json = {
  encode: (v) => JSON.stringify(v === undefined ? null : v),
  decode: (b) => JSON.parse(b.toString()),
  decodeString: JSON.parse,
};
const buffer = {
  encode: (v) => (v === null || v === undefined ? Buffer.alloc(0) : v),
  decode: (b) => b,
};

function defaultKey(...args) {
  if (args.length === 1) {
    const a = args[0];
    const t = typeof a;
    if (t === 'string') return a;
    if (t === 'number' || t === 'bigint' || t === 'boolean') return String(a);
  }
  return JSON.stringify(args);
}

/**
 * Wraps `fn` (sync or async) so its results are cached under namespace
 * `ns`, the key made by `key(...args)`. Options: client, ns, ttl (seconds),
 * key, codec ({encode(value) -> Buffer | string, decode(Buffer) -> value}),
 * leaseTtl, timeout, failOpen (default true: call fn when the daemon cannot
 * be reached). The wrapper has .invalidate(...args) and .bump().
 */
function cached(fn, opts) {
  if (typeof fn !== 'function') throw new TypeError('cached(fn, opts): fn must be a function');
  const { client, ns, ttl } = opts ?? {};
  if (!client || typeof client.fetch !== 'function') throw new TypeError('cached(): opts.client must be a nearcache Client');
  if (typeof ns !== 'string' || ns === '') throw new TypeError('cached(): opts.ns must be a non-empty string');
  const keyOf = opts.key ?? defaultKey;
  const codec = opts.codec ?? json;
  const fopts = { ttl, leaseTtl: opts.leaseTtl, timeout: opts.timeout, failOpen: opts.failOpen ?? true };
  const near = client.near;
  const text = codec.decodeString;

  async function wrapper(...args) {
    const key = keyOf(...args);
    if (near !== null) {
      if (text !== undefined) {
        const s = near.getString(ns, key);
        if (typeof s === 'string') return text(s);
      } else {
        const hit = near.get(ns, key);
        if (hit) return codec.decode(hit);
      }
    }
    let direct;
    let ran = false;
    const b = await client.fetch(ns, key, fopts, async () => {
      direct = await fn.apply(this, args);
      ran = true;
      return codec.encode(direct);
    });
    if (ran) return direct === undefined ? null : direct;
    return codec.decode(b ?? Buffer.alloc(0));
  }
  Object.defineProperty(wrapper, 'name', { value: `cached(${fn.name || 'anonymous'})` });
  /** Deletes the cached result for these arguments, on every host. */
  wrapper.invalidate = (...args) => client.delete(ns, keyOf(...args));
  /** Drops every cached result of this namespace, on every host. */
  wrapper.bump = () => client.bump(ns);
  wrapper.keyOf = keyOf;
  return wrapper;
}

module.exports = { cached, json, buffer, defaultKey };
