// The client rules (docs/protocol.md, "Client rules"): R1 fail fast on dial,
// R2 pending invalidations; and reconnecting after a daemon restart.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Daemon, Redis, withDaemons, nearHit, sleep, waitUntil } = require('./procs');
const nc = require('..');

test('R1: a missing socket fails at once, naming the path and NEARCACHE_URL', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodetest-'));
  const sock = path.join(dir, 'none.sock');
  const t0 = performance.now();
  await assert.rejects(nc.connect(`ipc://${sock}`), (e) => e instanceof nc.UnavailableError &&
    e.message.includes(sock) && /no daemon is listening/.test(e.message) && /NEARCACHE_URL/.test(e.message));
  assert.ok(performance.now() - t0 < 500, 'it waited for the 1 s timeout'); // a loaded machine may take 100 ms
  await assert.rejects(nc.connect(`ipc://${dir}/gone/x.sock`), /nor its directory .*gone exists/);
  fs.rmSync(dir, { recursive: true });
});

test('R1: a stale socket (nobody listening) fails at once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodetest-'));
  const sock = path.join(dir, 'stale.sock');
  // A socket bound and never listened on: what a killed daemon leaves.
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', sock]);
  const t0 = performance.now();
  await assert.rejects(nc.connect(`ipc://${sock}`), (e) => e instanceof nc.UnavailableError &&
    e.message.includes(sock) && /nobody is listening/.test(e.message));
  assert.ok(performance.now() - t0 < 500, 'it waited for the 1 s timeout'); // a loaded machine may take 100 ms
  fs.rmSync(dir, { recursive: true });
});

test('R1: after a failed dial, calls fail at once until the backoff is due, then dial once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodetest-'));
  const c = new nc.Client(`ipc://${path.join(dir, 'x.sock')}`, { nearBytes: 0 });
  const dials = [];
  const orig = c.conn.dial.bind(c.conn);
  c.conn.dial = () => {
    dials.push(performance.now());
    orig();
  };
  await assert.rejects(c.get('n', 'k'));
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) await assert.rejects(c.get('n', 'k'), /no daemon is listening/);
  const per = (performance.now() - t0) / 1000;
  assert.ok(per < 1, `a failing call took ${per} ms`);
  // Backoff at least 25, 50, 100... ms (50 ms doubling, jitter down to half):
  const most = 2 + Math.log2(1 + (performance.now() - t0) / 25);
  assert.ok(dials.length <= most, `${dials.length} dials in ${performance.now() - t0} ms`);
  const before = dials.length;
  await sleep(Math.max(0, c.conn.nextDialAt - performance.now()) + 5);
  await assert.rejects(c.get('n', 'k'));
  assert.equal(dials.length, before + 1, 'a call after the backoff dials once');
  await c.close();
  fs.rmSync(dir, { recursive: true });
});

test('R1: cached() fails open without a daemon, well under 1 ms a call above the function\'s own time', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodetest-'));
  const c = await nc.connect(`ipc://${path.join(dir, 'none.sock')}`, { lazy: true });
  let calls = 0;
  const f = nc.cached((id) => {
    calls++;
    return { id };
  }, { client: c, ns: 'n' });
  const t0 = performance.now();
  for (let i = 0; i < 2000; i++) assert.deepEqual(await f(i % 10), { id: i % 10 });
  const per = (performance.now() - t0) / 2000;
  assert.equal(calls, 2000);
  assert.ok(per < 1, `${per} ms a call`);
  await c.close();
  fs.rmSync(dir, { recursive: true });
});

test('R1: a socket the process may not open is PERMISSION_DENIED naming owner, group, mode and the fix', async () => {
  // As root (CI), the dial is made by a child running as nobody.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodetest-'));
  fs.chmodSync(dir, 0o755);
  const sock = path.join(dir, 'closed.sock');
  const srv = net.createServer().listen(sock);
  await new Promise((r) => srv.once('listening', r));
  fs.chmodSync(sock, 0o600);
  const script = `require(${JSON.stringify(require.resolve('..'))}).connect('ipc://${sock}')
    .catch((e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })));`;
  const opts = process.getuid() === 0 ? { uid: 65534, gid: 65534 } : {};
  if (process.getuid() !== 0) fs.chmodSync(sock, 0o000);
  const got = JSON.parse(execFileSync(process.execPath, ['-e', script], { ...opts, cwd: '/' }).toString());
  srv.close();
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(got.name, 'PermissionDeniedError');
  assert.equal(got.code, 'PERMISSION_DENIED');
  assert.ok(got.message.includes(sock), got.message);
  assert.match(got.message, / 0600\)|0000\)| 0\)/);
  assert.match(got.message, /socket_group/);
  assert.match(got.message, /add \S+ to the group \S+/);
});

test('R1: a socket file that changed since the failed dial is dialled at once', async () => {
  const r = await new Redis().start();
  const d = new Daemon(r);
  const c = new nc.Client(d.url, { nearBytes: 0, timeout: 2000 });
  try {
    await assert.rejects(c.get('n', 'k'), nc.UnavailableError);
    c.conn.nextDialAt = performance.now() + 3600e3; // a backoff that would outlast the test
    await assert.rejects(c.get('n', 'k'), /no daemon is listening/);
    await d.start();
    assert.equal(await c.get('n', 'k'), null);
  } finally {
    await c.close();
    await d.cleanup();
    await r.stop();
  }
});

test('a daemon restart: the next call reconnects; gets in flight are resent', async () => {
  await withDaemons(1, async (_r, d) => {
    const c = await nc.connect(d.url, { timeout: 3000, nearBytes: 0 });
    try {
      await c.set('n', 'k', 'v');
      await d.restart();
      assert.equal((await c.get('n', 'k')).toString(), 'v');
    } finally {
      await c.close();
    }
  });
});

test('R2: deletes and bumps the daemon cannot take are kept, sent first when it answers, and strict ones fail', async () => {
  await withDaemons(1, async (_r, d) => {
    const c = await nc.connect(d.url, { timeout: 2000 });
    const other = await nc.connect(d.url, { timeout: 2000, nearBytes: 0 });
    try {
      await other.mset('n', [['a', '1'], ['b', '2']]);
      await other.set('m', 'x', '1');
      assert.equal((await nearHit(c, 'n', 'a')).source, 'near');
      assert.equal((await nearHit(c, 'n', 'b')).source, 'near');
      const before = c.nearStats();
      await d.stop();
      const warned = new Promise((res) => process.once('warning', (w) => res(w)));
      assert.equal(await c.delete('n', 'a'), false); // kept: returns normally
      assert.equal((await warned).code, 'NEARCACHE_QUEUED');
      // and the near tier empties: a Get in flight may hold a's old value
      assert.equal(c.nearStats().entries, 0);
      assert.equal(c.nearStats().flushes, before.flushes + 1);
      assert.equal(await c.bump('m'), 0);
      await assert.rejects(c.delete('n', 'b', { strict: true }), nc.UnavailableError);
      assert.equal(c.pendingInvalidations, 3);
      await assert.rejects(c.get('n', 'a'), nc.UnavailableError); // the near tier dropped it
      await d.start();
      await sleep(100); // past the dial backoff
      assert.equal(await c.get('n', 'a'), null);
      assert.equal(c.pendingInvalidations, 0);
      assert.equal(await other.get('n', 'a'), null);
      assert.equal(await other.get('m', 'x'), null);
      assert.equal(await other.get('n', 'b'), null); // strict: failed, and kept too
    } finally {
      await c.close();
      await other.close();
    }
  });
});

test('R2: past the bound, the namespace is kept and bumped instead', async () => {
  await withDaemons(1, async (_r, d) => {
    const c = await nc.connect(d.url, { timeout: 2000, nearBytes: 0, maxPendingInvalidations: 2 });
    try {
      await c.mset('n', [['a', '1'], ['z', '26']]);
      await d.stop();
      for (const k of ['a', 'b', 'c', 'd']) await c.delete('n', k);
      assert.equal(c.pendingInvalidations, 3); // two deletes and one namespace
      await d.start();
      await waitUntil(() => c.pendingInvalidations === 0, 3000, 'the kept invalidations to go without a call');
      assert.equal(await c.get('n', 'z'), null, 'the namespace was bumped');
    } finally {
      await c.close();
    }
  });
});

test('R2: invalidations still kept are sent at close when the daemon answers', async () => {
  await withDaemons(1, async (_r, d) => {
    const c = await nc.connect(d.url, { timeout: 2000, nearBytes: 0 });
    const other = await nc.connect(d.url, { timeout: 2000, nearBytes: 0, lazy: true });
    try {
      await c.set('n', 'a', '1');
      await d.stop();
      await c.delete('n', 'a');
      await d.start();
      await sleep(100);
      await c.close();
      assert.equal(await other.get('n', 'a'), null);
    } finally {
      await other.close();
    }
  });
});
