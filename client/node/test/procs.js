// Real redis-server and nearcached processes for the tests, as the C
// harness and the Python tests run them: each in its own temporary
// directory, on a free loopback port or an IPC path there, stopped by pid
// (and killed when the test process exits). The daemon is the CMake build's:
// $NC_BUILD/daemon/nearcached, else build/ at the repository's root.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Client } = require('../lib/client');

const REPO = path.resolve(__dirname, '../../..');
const live = new Set();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

function buildDir() {
  return process.env.NC_BUILD || path.join(REPO, 'build');
}

function daemonBinary() {
  const p = path.join(buildDir(), 'daemon/nearcached');
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: build the C code first (see README)`);
  return p;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitUntil(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

class Redis {
  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodetest-redis-'));
    this.port = await freePort();
    const log = fs.openSync(path.join(this.dir, 'redis.log'), 'a');
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no'], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    live.add(this.proc);
    await waitUntil(() => this.cmd('PING') === 'PONG', 10000, 'redis-server to answer PING');
    return this;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  cmd(...args) {
    try {
      return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args],
        { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10000 }).toString().trim();
    } catch {
      return '';
    }
  }

  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    await stopProc(p, 'SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

class Daemon {
  constructor(redis, ...flags) {
    this.redis = redis;
    this.flags = flags;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodetest-daemon-'));
    this.path = path.join(this.dir, 'nc.sock');
    this.url = `ipc://${this.path}`;
    this.log = path.join(this.dir, 'nearcached.log');
  }

  async start() {
    const log = fs.openSync(this.log, 'a');
    this.proc = spawn(daemonBinary(), ['--listen', this.url, '--redis', this.redis ? this.redis.url : 'redis://127.0.0.1:1',
      '--log-level', 'debug', '--redis-timeout', '2s', '--request-timeout', '5s', ...this.flags],
    { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    live.add(this.proc);
    await this.waitReady();
    return this;
  }

  /** Whether the ring says near tiers may serve (epoch set, serving_until ahead). */
  ringServing() {
    try {
      const h = fs.readFileSync(`${this.path}.ring`).subarray(0, 192);
      const now = process.hrtime.bigint() / 1000000n; // CLOCK_MONOTONIC, as the ring's
      return h.readBigUInt64LE(24) !== 0n && h.readBigInt64LE(128) >= now;
    } catch {
      return false;
    }
  }

  async waitReady() {
    const needL1 = this.redis && this.redis.proc;
    // Ping's l1_serving can be true for up to a heartbeat before the ring's
    // serving_until is first set (a daemon just started): wait for both.
    await waitUntil(async () => {
      if (this.proc.exitCode !== null) throw new Error(`nearcached exited at start:\n${fs.readFileSync(this.log, 'utf8')}`);
      const c = new Client(this.url, { timeout: 500, nearBytes: 0 });
      try {
        const p = await c.ping();
        return !needL1 || (p.l1Serving && this.ringServing());
      } catch {
        return false;
      } finally {
        await c.close();
      }
    }, 10000, `nearcached to get ready; log: ${this.log}`);
  }

  /** SIGTERM, and waits for it to exit. */
  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    await stopProc(p, 'SIGTERM');
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  async cleanup() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Sends `signal` to a child still running and waits for it to exit. */
async function stopProc(p, signal) {
  live.delete(p);
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await done;
}

/**
 * Runs fn(redis, ...daemons) with a fresh redis-server and `n` nearcached
 * on it, and stops them all afterwards, whatever fn did.
 */
async function withDaemons(n, fn) {
  const redis = await new Redis().start();
  const daemons = [];
  try {
    for (let i = 0; i < n; i++) daemons.push(await new Daemon(redis).start());
    return await fn(redis, ...daemons);
  } finally {
    for (const d of daemons) await d.cleanup();
    await redis.stop();
  }
}

/**
 * Gets (ns, key) through client c until its near tier answers (a fill,
 * then a hit), for up to 5 s: a heavily loaded machine can delay the
 * daemon's heartbeat past its coherence window, and the tier rightly serves
 * nothing meanwhile. Returns the last getEx().
 */
async function nearHit(c, ns, key) {
  const end = Date.now() + 5000;
  for (;;) {
    await c.get(ns, key);
    const r = await c.getEx(ns, key);
    if (r.source === 'near' || Date.now() > end) return r;
    await sleep(20);
  }
}

let nsCount = 0;
/** A namespace no other test uses. */
function freshNs() {
  return `t${process.pid.toString(36)}x${(nsCount++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

module.exports = { REPO, Redis, Daemon, withDaemons, nearHit, freshNs, waitUntil, sleep, buildDir };
