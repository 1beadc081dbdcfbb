#!/usr/bin/env node
// The Node client's benchmark (docs/benchmarks.md, "The Node.js client"),
// everything in one run on one Redis: a near-tier hit against ioredis GET
// and node-redis 5's client-side cache (RESP3), the daemon path (near tier
// off, an L1 hit) against libnearcache's (nearcache-bench run l1, same
// daemon), cached() on a warm key against the same decorator over ioredis
// (JSON in Redis), and a stampede: one cold key, 200 concurrent calls over 2
// processes on 2 daemons, loads counted for both decorators.
//
//   NC_BUILD=build node client/node/bench/bench.js [--seconds S] [--smoke] [--json]
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const path = require('node:path');
const { Redis, Daemon, buildDir } = require('../test/procs');
const nc = require('..');

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const seconds = smoke ? 0.2 : Number(args[args.indexOf('--seconds') + 1] || 0) || 2;
const VALUE = 'x'.repeat(100);

/**
 * Runs each path's f() one call after another, the paths taking turns
 * (ROUNDS turns of seconds/ROUNDS each, so a busy machine slows them alike).
 * In each turn, half the time times every call (p50 and p99 in µs over all
 * of them) and half only counts calls, reading the clock every 64 (calls/s:
 * the median turn's, and the best turn's, the one least disturbed by the
 * machine's other work), so the timing's own cost is not in the rate.
 */
async function measure(paths) {
  const ROUNDS = smoke ? 1 : 5;
  // Latencies go to a fixed reservoir (a uniform sample of every call), so
  // the fast paths' millions of samples grow no heap for the GC to walk.
  const CAP = 1 << 18;
  const res = new Map(paths.map(([name]) => [name, { lat: new Float64Array(CAP), seen: 0, rates: [] }]));
  for (const [, f] of paths) for (let i = 0; i < 2000; i++) await f();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, f] of paths) {
      const r = res.get(name);
      const half = BigInt(Math.round((seconds / ROUNDS / 2) * 1e9));
      let t = process.hrtime.bigint();
      const end = t + half;
      while (t < end) {
        await f();
        const t2 = process.hrtime.bigint();
        const k = r.seen < CAP ? r.seen : Math.floor(Math.random() * (r.seen + 1));
        if (k < CAP) r.lat[k] = Number(t2 - t);
        r.seen++;
        t = t2;
      }
      const t0 = process.hrtime.bigint();
      let n = 0;
      for (t = t0; t < t0 + half; t = process.hrtime.bigint()) {
        for (let i = 0; i < 64; i++) await f();
        n += 64;
      }
      r.rates.push(n / (Number(t - t0) / 1e9));
    }
  }
  const out = {};
  for (const [name, { lat: all, seen, rates }] of res) {
    const lat = all.slice(0, Math.min(seen, CAP)).sort();
    rates.sort((a, b) => a - b);
    out[name] = { p50_us: lat[lat.length >> 1] / 1000, p99_us: lat[Math.floor(lat.length * 0.99)] / 1000,
      calls_per_s: Math.round(rates[rates.length >> 1]), best_calls_per_s: Math.round(rates[rates.length - 1]),
      n: seen };
  }
  return out;
}

function libnearcache(url, redisUrl) {
  const bin = path.join(buildDir(), 'bench/nearcache-bench');
  const out = execFileSync(bin, ['run', 'l1', '--url', url, '--redis', redisUrl, '--json',
    '--duration', String(seconds), '--warmup', String(Math.min(0.3, seconds / 4)), '--keys', '1000'],
  { stdio: ['ignore', 'pipe', 'ignore'] });
  const row = JSON.parse(out).rows[0];
  return { p50_us: row.p50_us, p99_us: row.p99_us, calls_per_s: row.ops_per_s, best_calls_per_s: row.ops_per_s, n: row.n };
}

/** The stampede: 2 processes (one per daemon), 100 concurrent calls each of one cold key. */
function stampede(kind, urls, redisPort) {
  const at = Date.now() + 1500;
  const ns = `stampede${process.pid}${kind}${Date.now()}`;
  return Promise.all(urls.map((url) => new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(__dirname, 'stampede.js'), kind, url, String(redisPort), ns, String(at)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b) => (out += b));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`stampede ${kind} exited ${code}`))));
  }))).then((rs) => ({ loads: rs.reduce((a, r) => a + r.loads, 0), calls: rs.reduce((a, r) => a + r.calls, 0),
    errors: rs.reduce((a, r) => a + r.errors, 0) }));
}

(async () => {
  const redis = await new Redis().start();
  const a = await new Daemon(redis).start();
  const b = await new Daemon(redis).start();
  const Ioredis = require('ioredis');
  const { createClient } = require('redis');
  const io = new Ioredis(redis.port, '127.0.0.1');
  const csc = createClient({ url: redis.url, RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0, evictPolicy: 'LRU' } });
  await csc.connect();
  const near = await nc.connect(a.url);
  const far = await nc.connect(a.url, { nearBytes: 0 });
  const r = {};
  try {
    await io.set('k', VALUE);
    await near.set('bench', 'k', VALUE, { ttl: 3600 });
    await csc.get('k');
    await near.get('bench', 'k');
    Object.assign(r, await measure([
      ['near_hit', () => near.get('bench', 'k')],
      ['node_redis_csc_hit', () => csc.get('k')],
      ['ioredis_get', () => io.get('k')],
      ['daemon_l1_hit', () => far.get('bench', 'k')],
    ]));
    r.libnearcache_l1_hit = libnearcache(a.url, redis.url);

    const user = (id) => ({ id, name: `user${id}`, email: `user${id}@example.com`, tags: ['a', 'b'] });
    const dec = nc.cached(async (id) => user(id), { client: near, ns: 'users', ttl: 3600 });
    const ioDec = async (id) => {
      const s = await io.get(`users:${id}`);
      if (s !== null) return JSON.parse(s);
      const v = user(id);
      await io.set(`users:${id}`, JSON.stringify(v), 'EX', 3600);
      return v;
    };
    await dec(1);
    await dec(1);
    await ioDec(1);
    Object.assign(r, await measure([['cached_warm', () => dec(1)], ['ioredis_decorator_warm', () => ioDec(1)]]));

    r.stampede_nearcache = await stampede('nearcache', [a.url, b.url], redis.port);
    r.stampede_ioredis = await stampede('ioredis', [a.url, b.url], redis.port);
  } finally {
    await near.close();
    await far.close();
    io.disconnect();
    await csc.close();
    await a.cleanup();
    await b.cleanup();
    await redis.stop();
  }
  const x = (p, q) => (p / q).toFixed(3);
  r.ratios = {
    near_p50_over_ioredis_p50: x(r.near_hit.p50_us, r.ioredis_get.p50_us),
    near_p50_over_node_redis_csc_p50: x(r.near_hit.p50_us, r.node_redis_csc_hit.p50_us),
    daemon_p50_over_libnearcache_p50: x(r.daemon_l1_hit.p50_us, r.libnearcache_l1_hit.p50_us),
    cached_calls_over_ioredis_decorator: x(r.cached_warm.calls_per_s, r.ioredis_decorator_warm.calls_per_s),
    cached_best_calls_over_ioredis_decorator_best: x(r.cached_warm.best_calls_per_s, r.ioredis_decorator_warm.best_calls_per_s),
  };
  if (args.includes('--json')) {
    console.log(JSON.stringify(r));
    return;
  }
  const row = (name, m) => `| ${name} | ${m.p50_us.toFixed(2)} | ${m.p99_us.toFixed(2)} | ${m.calls_per_s} | ${m.best_calls_per_s} |`;
  console.log('| path (one call after another) | p50 µs | p99 µs | calls/s (median turn) | calls/s (best turn) |\n| --- | ---: | ---: | ---: | ---: |');
  console.log(row('nearcache get, near-tier hit', r.near_hit));
  console.log(row('node-redis 5 get, client-side cache hit (RESP3)', r.node_redis_csc_hit));
  console.log(row('ioredis get', r.ioredis_get));
  console.log(row('nearcache get, near tier off (daemon L1 hit)', r.daemon_l1_hit));
  console.log(row('libnearcache nc_get, L1 hit (nearcache-bench run l1)', r.libnearcache_l1_hit));
  console.log(row('cached() on a warm key', r.cached_warm));
  console.log(row('the same decorator over ioredis (JSON in Redis)', r.ioredis_decorator_warm));
  console.log(`\nratios: ${JSON.stringify(r.ratios)}`);
  console.log(`stampede (200 calls, 2 processes, 2 daemons): nearcache ${JSON.stringify(r.stampede_nearcache)}, ioredis decorator ${JSON.stringify(r.stampede_ioredis)}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
