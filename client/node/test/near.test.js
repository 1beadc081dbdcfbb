'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Redis, Daemon, withDaemons, nearHit, freshNs } = require('./procs');
const nc = require('..');

let redis;
let daemon;
let near;
let writer;
before(async () => {
  redis = await new Redis().start();
  daemon = await new Daemon(redis).start();
  near = await nc.connect(daemon.url, { timeout: 5000 });
  writer = await nc.connect(daemon.url, { timeout: 5000, nearBytes: 0 });
});
after(async () => {
  await near?.close();
  await writer?.close();
  await daemon?.cleanup();
  await redis?.stop();
});

test('the near tier is on by default and serves the second get', async () => {
  const ns = freshNs();
  await writer.set(ns, 'k', 'v1');
  assert.equal((await near.getEx(ns, 'k')).source, 'l1');
  const r = await nearHit(near, ns, 'k');
  assert.equal(r.source, 'near');
  assert.equal(r.value.toString(), 'v1');
  const s = near.nearStats();
  assert.equal(s.problem, '');
  assert.ok(s.hits >= 1 && s.entries >= 1 && s.bytes > 0);
  assert.equal(writer.nearStats(), null);
});

test('another client\'s write is seen by the next get (the ring drops the entry first)', async () => {
  const ns = freshNs();
  await writer.set(ns, 'k', 'v1');
  for (let i = 1; i <= 50; i++) {
    await near.get(ns, 'k');
    assert.equal((await near.get(ns, 'k')).toString(), `v${i}`);
    await writer.set(ns, 'k', `v${i + 1}`);
  }
  await writer.delete(ns, 'k');
  assert.equal(await near.get(ns, 'k'), null);
});

test('a bump drops the namespace, an own write drops the key', async () => {
  const ns = freshNs();
  await writer.mset(ns, [['a', '1'], ['b', '2']]);
  await near.mget(ns, ['a', 'b']);
  assert.equal((await nearHit(near, ns, 'a')).source, 'near');
  await writer.bump(ns);
  assert.deepEqual(await near.mget(ns, ['a', 'b']), [null, null]);
  await near.set(ns, 'a', 'x');
  await near.get(ns, 'a');
  await near.set(ns, 'a', 'y');
  assert.equal((await near.get(ns, 'a')).toString(), 'y');
});

test('negative entries are kept as known absent; plain misses never', async () => {
  const ns = freshNs();
  await writer.set(ns, 'neg', '', { ttl: 30, negative: true });
  const r = await nearHit(near, ns, 'neg');
  assert.equal(r.source, 'near');
  assert.equal(r.negative, true);
  await near.get(ns, 'missing');
  assert.notEqual((await near.getEx(ns, 'missing')).source, 'near');
  await writer.set(ns, 'neg', 'now');
  assert.equal((await near.get(ns, 'neg')).toString(), 'now');
});

test('a hit of a value larger than the reused buffer, and of UTF-8, comes back whole', async () => {
  const ns = freshNs();
  const big = Buffer.alloc(100000);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  await writer.set(ns, 'big', big);
  await writer.set(ns, 'text', 'значение');
  const r = await nearHit(near, ns, 'big');
  assert.equal(r.source, 'near');
  assert.ok(r.value.equals(big));
  assert.equal((await nearHit(near, ns, 'text')).value.toString(), 'значение');
  assert.equal(near.near.getString(ns, 'text'), 'значение');
});

test('the near tier is bounded in bytes (LRU)', async () => {
  const ns = freshNs();
  const small = await nc.connect(daemon.url, { nearBytes: 64 * 1024 });
  try {
    const v = Buffer.alloc(1000, 7);
    await writer.mset(ns, Array.from({ length: 200 }, (_, i) => [`k${i}`, v]));
    for (let i = 0; i < 200; i++) await small.get(ns, `k${i}`);
    const s = small.nearStats();
    assert.ok(s.bytes <= 64 * 1024, String(s.bytes));
    assert.ok(s.evictions > 0);
    assert.ok(s.entries < 200);
  } finally {
    await small.close();
  }
});

test('a stopped daemon\'s near tier serves nothing; after a restart it serves the new state', async () => {
  await withDaemons(1, async (_r, d) => {
    const c = await nc.connect(d.url, { timeout: 2000 });
    const w = await nc.connect(d.url, { timeout: 2000, nearBytes: 0 });
    try {
      await w.set('n', 'k', 'old');
      assert.equal((await nearHit(c, 'n', 'k')).source, 'near');
      await d.stop();
      await assert.rejects(c.get('n', 'k'), nc.UnavailableError);
      assert.equal(c.nearStats().serving, false);
      await d.start();
      await w.set('n', 'k', 'new');
      assert.equal((await c.get('n', 'k')).toString(), 'new');
      const r = await nearHit(c, 'n', 'k');
      assert.equal(r.source, 'near');
      assert.equal(r.value.toString(), 'new');
    } finally {
      await c.close();
      await w.close();
    }
  });
});

test('R3: the near tier\'s counters reach the daemon\'s stats within a report interval', async () => {
  const ns = freshNs();
  const base = (await writer.stats()).stats;
  const c = await nc.connect(daemon.url, { timeout: 5000 });
  try {
    await writer.set(ns, 'k', 'v');
    for (let i = 0; i < 20; i++) await c.get(ns, 'k');
    const { hits, misses } = c.nearStats();
    assert.ok(hits >= 1 && misses >= 1);
    let s;
    const end = Date.now() + 10000;
    do {
      await new Promise((r) => setTimeout(r, 100));
      s = (await writer.stats()).stats;
    } while ((s.near_hits - base.near_hits < hits || s.near_clients < 1) && Date.now() < end);
    assert.ok(s.near_hits - base.near_hits >= hits, `near_hits went from ${base.near_hits} to ${s.near_hits}; this client hit ${hits}`);
    assert.ok(s.near_misses - base.near_misses >= misses);
    assert.ok(s.near_clients >= 1);
  } finally {
    await c.close();
  }
});

test('a worker thread has a near tier of its own (the addon loads in every thread)', async () => {
  const { Worker } = require('node:worker_threads');
  const ns = freshNs();
  await writer.set(ns, 'k', 'v');
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const nc = require(${JSON.stringify(require.resolve('..'))});
    (async () => {
      const c = await nc.connect(workerData.url);
      let r;
      for (const end = Date.now() + 5000; Date.now() < end;) {
        await c.get(workerData.ns, 'k');
        r = await c.getEx(workerData.ns, 'k');
        if (r.source === 'near') break;
      }
      parentPort.postMessage({ source: r.source, value: r.value.toString() });
      await c.close();
    })();`;
  const w = new Worker(src, { eval: true, workerData: { url: daemon.url, ns } });
  const got = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.deepEqual(got, { source: 'near', value: 'v' });
});
