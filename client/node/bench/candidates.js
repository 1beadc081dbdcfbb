// The near tier's candidates, measured before choosing (docs/node.md): a hit
// through the N-API addon over client/near.c, against a hit that reads the
// ring's header with a positioned read (fs.readSync) and looks the key up in
// a JS Map, and against an ioredis GET of the same key.
'use strict';
const fs = require('node:fs');
const { Redis, Daemon } = require('../test/procs');
const { connect } = require('..');

function p50(xs) {
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)];
}

async function timeit(n, f) {
  const xs = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await f();
    xs[i] = Number(process.hrtime.bigint() - t);
  }
  return p50(xs);
}

(async () => {
  const r = await new Redis().start();
  const d = await new Daemon(r).start();
  const c = await connect(d.url);
  await c.set('bench', 'k', 'x'.repeat(100), { ttl: 300 });
  await c.get('bench', 'k');
  await c.get('bench', 'k');
  const n = 200000;
  await timeit(n, () => c.get('bench', 'k'));
  const addon = await timeit(n, () => c.get('bench', 'k'));
  const fd = fs.openSync(`${d.path}.ring`, 'r');
  const hdr = Buffer.alloc(192);
  const m = new Map([['bench\0k', Buffer.from('x'.repeat(100))]]);
  const pread = async () => {
    fs.readSync(fd, hdr, 0, 192, 0);
    hdr.readBigUInt64LE(24); hdr.readBigInt64LE(128); hdr.readBigUInt64LE(32); hdr.readBigUInt64LE(64);
    return Buffer.from(m.get('bench\0k'));
  };
  await timeit(n, pread);
  const pr = await timeit(n, pread);
  const Ioredis = require('ioredis');
  const io = new Ioredis(r.port, '127.0.0.1');
  await io.set('k', 'x'.repeat(100));
  await timeit(20000, () => io.get('k'));
  const ior = await timeit(20000, () => io.get('k'));
  const loop = (f) => {
    const k = 1000000;
    for (let i = 0; i < k / 10; i++) f();
    const t = process.hrtime.bigint();
    for (let i = 0; i < k; i++) f();
    return Number(process.hrtime.bigint() - t) / k;
  };
  const addonSync = loop(() => c.near.get('bench', 'k'));
  const preadSync = loop(() => {
    fs.readSync(fd, hdr, 0, 192, 0);
    hdr.readBigUInt64LE(24); hdr.readBigInt64LE(128); hdr.readBigUInt64LE(32); hdr.readBigUInt64LE(64);
    return Buffer.from(m.get('bench\0k'));
  });
  console.log(JSON.stringify({ addon_hit_p50_ns: addon, pread_hit_p50_ns: pr, ioredis_get_p50_ns: ior,
    addon_lookup_mean_ns: Math.round(addonSync), pread_lookup_mean_ns: Math.round(preadSync) }));
  io.disconnect();
  fs.closeSync(fd);
  await c.close();
  await d.cleanup();
  await r.stop();
})();
