'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Redis, Daemon, freshNs } = require('./procs');
const nc = require('..');

let redis;
let daemon;
let c;
before(async () => {
  redis = await new Redis().start();
  daemon = await new Daemon(redis).start();
  c = await nc.connect(daemon.url, { timeout: 5000, nearBytes: 0 });
});
after(async () => {
  await c?.close();
  await daemon?.cleanup();
  await redis?.stop();
});

test('set, get, delete and get again', async () => {
  const ns = freshNs();
  assert.equal(await c.set(ns, '42', 'alice', { ttl: 300 }), 300);
  assert.deepEqual(await c.get(ns, '42'), Buffer.from('alice'));
  assert.equal(await c.delete(ns, '42'), true);
  assert.equal(await c.get(ns, '42'), null);
  assert.equal(await c.delete(ns, '42'), false);
});

test('keys, namespaces and values are bytes: Buffers with NULs, or UTF-8 strings', async () => {
  const ns = freshNs();
  const key = Buffer.from([0, 1, 2, 0xff]);
  const value = Buffer.from([0, 0, 0x80]);
  await c.set(Buffer.from(ns), key, value);
  assert.deepEqual(await c.get(ns, key), value);
  await c.set(ns, 'ключ', 'значение');
  assert.equal((await c.get(ns, Buffer.from('ключ'))).toString(), 'значение');
  await c.set(ns, 'empty', '');
  assert.deepEqual(await c.get(ns, 'empty'), Buffer.alloc(0));
});

test('getEx says where a value came from, its TTL, and a negative entry', async () => {
  const ns = freshNs();
  await c.set(ns, 'k', 'v', { ttl: 60 });
  const r = await c.getEx(ns, 'k');
  assert.equal(r.source, 'l1');
  assert.ok(r.ttlMs > 50000 && r.ttlMs <= 60000, String(r.ttlMs));
  assert.equal(r.found, true);
  await c.set(ns, 'gone', '', { ttl: 30, negative: true });
  const n = await c.getEx(ns, 'gone');
  assert.equal(n.found, false);
  assert.equal(n.negative, true);
  assert.equal(n.value, null);
  assert.ok(n.ttlMs > 0);
  assert.equal(await c.get(ns, 'gone'), null);
});

test('mset and mget, in the order of the keys, absent keys null', async () => {
  const ns = freshNs();
  assert.equal(await c.mset(ns, [['1', 'ann'], ['2', 'bob']], { ttl: 60 }), 2);
  assert.equal(await c.mset(ns, new Map([['3', 'cy']])), 1);
  assert.equal(await c.mset(ns, { 4: 'di' }), 1);
  const got = await c.mget(ns, ['1', 'x', '2', '3', '4', '1']);
  assert.deepEqual(got.map((b) => b && b.toString()), ['ann', null, 'bob', 'cy', 'di', 'ann']);
});

test('bump drops the namespace and returns a version one above the last', async () => {
  const ns = freshNs();
  await c.set(ns, 'k', 'v');
  const v1 = await c.bump(ns);
  assert.equal(typeof v1, 'number');
  assert.equal(await c.get(ns, 'k'), null);
  assert.equal(await c.bump(ns), v1 + 1);
});

test('ping and stats', async () => {
  const p = await c.ping();
  assert.equal(p.redisUp, true);
  assert.equal(p.l1Serving, true);
  assert.match(p.nodeId, /^[0-9a-f]{16}$/);
  assert.equal(p.maxRequestSize, 1115264);
  assert.equal(p.protocolVersion, 1);
  assert.equal(p.redisError, '');
  const s = await c.stats();
  assert.equal(typeof s.stats.requests, 'number');
  assert.ok(s.stats.requests > 0);
  assert.ok(Array.isArray(s.namespaces));
});

test('200 requests in flight on one connection each get their own reply', async () => {
  const ns = freshNs();
  await Promise.all(Array.from({ length: 200 }, (_, i) => c.set(ns, `k${i}`, `v${i}`)));
  const got = await Promise.all(Array.from({ length: 200 }, (_, i) => c.get(ns, `k${i}`)));
  got.forEach((b, i) => assert.equal(b.toString(), `v${i}`));
});

test('bad input is an InvalidArgumentError naming the rule, with its code', async () => {
  await assert.rejects(c.get('a:b', 'k'), (e) => e instanceof nc.InvalidArgumentError &&
    e instanceof nc.NearcacheError && e.code === 'INVALID_ARGUMENT' && e.status === 3 && /contains ':'/.test(e.message));
  await assert.rejects(c.get('ns', ''), /key is empty/);
  await assert.rejects(c.set('ns', 'k', 'v', { ttl: -1 }), TypeError);
  await assert.rejects(c.get('ns', 42), TypeError);
});

test('an mset Redis refuses names every key it did not store', async () => {
  const ns = freshNs();
  redis.cmd('HSET', `nc:v1:nsver:${ns}`, 'f', 'v'); // a version the script cannot read
  await assert.rejects(c.mset(ns, [['a', '1'], ['b', '2']]), (e) => e instanceof nc.FailedPreconditionError &&
    e.notStored.map(String).join() === 'a,b' && e.maybeStored.length === 0);
});

test('a request over the daemon\'s size cap fails without being sent', async () => {
  const ns = freshNs();
  const big = Buffer.alloc(600000, 1);
  await assert.rejects(c.mset(ns, [['a', big], ['b', big]]), (e) => e instanceof nc.ResourceExhaustedError &&
    /larger than the daemon accepts \(1115264 bytes/.test(e.message));
  assert.equal(await c.set(ns, 'a', big), 3600);
  assert.equal((await c.get(ns, 'a')).length, 600000);
});

test('a call past its deadline rejects with DeadlineExceededError; an aborted one with CancelledError', async () => {
  const ns = freshNs();
  const g = await c.getEx(ns, 'l', { lease: true });
  assert.equal(g.lease, 'granted');
  assert.ok(g.leaseToken.length > 0);
  const busy = await c.getEx(ns, 'l', { lease: true, timeout: 1000 });
  assert.equal(busy.lease, 'busy');
  assert.equal(busy.found, false);
  const t0 = Date.now();
  await assert.rejects(c.getEx(ns, 'l', { lease: true, signal: AbortSignal.timeout(100), timeout: 3000 }),
    nc.DeadlineExceededError);
  assert.ok(Date.now() - t0 < 1000);
  const ac = new AbortController();
  const p = c.getEx(ns, 'l', { lease: true, signal: ac.signal, timeout: 3000 });
  ac.abort();
  await assert.rejects(p, (e) => e instanceof nc.CancelledError && e.code === 'CANCELLED');
  await assert.rejects(c.get(ns, 'x', { signal: AbortSignal.abort() }), nc.CancelledError);
  assert.equal(await c.delete(ns, 'l', { leaseToken: g.leaseToken }), true);
});

test('fetch loads once per key, stores with the lease, and a second fetch is a hit', async () => {
  const ns = freshNs();
  let loads = 0;
  const load = async () => {
    loads++;
    await new Promise((r) => setTimeout(r, 50));
    return 'loaded';
  };
  const got = await Promise.all(Array.from({ length: 50 }, () => c.fetch(ns, 'k', { ttl: 60 }, load)));
  assert.ok(got.every((b) => b.toString() === 'loaded'));
  assert.equal(loads, 1);
  assert.equal((await c.fetch(ns, 'k', { ttl: 60 }, load)).toString(), 'loaded');
  assert.equal(loads, 1);
});

test('fetch releases the lease when the loader fails, so the next caller loads', async () => {
  const ns = freshNs();
  await assert.rejects(c.fetch(ns, 'k', {}, async () => {
    throw new Error('db down');
  }), /db down/);
  const t0 = Date.now();
  assert.equal((await c.fetch(ns, 'k', {}, () => 'ok')).toString(), 'ok');
  assert.ok(Date.now() - t0 < 1000, 'the lease was released, not waited out');
});

test('fetch caches an absent value only with negativeTtl', async () => {
  const ns = freshNs();
  let loads = 0;
  const none = () => {
    loads++;
    return null;
  };
  assert.equal(await c.fetch(ns, 'a', {}, none), null);
  assert.equal(await c.fetch(ns, 'a', {}, none), null);
  assert.equal(loads, 2);
  assert.equal(await c.fetch(ns, 'b', { negativeTtl: 30 }, none), null);
  assert.equal(await c.fetch(ns, 'b', { negativeTtl: 30 }, none), null);
  assert.equal(loads, 3);
});

test('cached() keeps JSON results, null too, with invalidate and bump', async () => {
  const ns = freshNs();
  const calls = [];
  const user = nc.cached(async (id) => {
    calls.push(id);
    return id === 0 ? null : { id, name: `user${id}` };
  }, { client: c, ns, ttl: 60 });
  assert.deepEqual(await user(1), { id: 1, name: 'user1' });
  assert.deepEqual(await user(1), { id: 1, name: 'user1' });
  assert.equal(await user(0), null);
  assert.equal(await user(0), null);
  assert.deepEqual(calls, [1, 0]);
  await user.invalidate(1);
  await user(1);
  assert.deepEqual(calls, [1, 0, 1]);
  await user.bump();
  await user(1);
  await user(0);
  assert.deepEqual(calls, [1, 0, 1, 1, 0]);
});

test('cached() with a key function and the buffer codec', async () => {
  const ns = freshNs();
  let n = 0;
  const f = nc.cached((a, b) => {
    n++;
    return Buffer.from(`${a}+${b}`);
  }, { client: c, ns, key: (a, b) => `${a}:${b}`, codec: nc.codecs.buffer });
  assert.equal((await f(1, 2)).toString(), '1+2');
  assert.equal((await f(1, 2)).toString(), '1+2');
  assert.equal(n, 1);
  assert.equal((await c.get(ns, '1:2')).toString(), '1+2');
});
