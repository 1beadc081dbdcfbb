// examples/node: the product service in 2 cluster workers against a real
// daemon: 200 concurrent cold requests load the product once; an update is
// seen at once by both workers.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { Redis, Daemon, REPO, waitUntil } = require('./procs');

const dir = path.join(REPO, 'examples/node');

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One request on a connection of its own (so the primary hands them to both workers in turn). */
function http(port, method, p, body) {
  return new Promise((resolve, reject) => {
    const req = require('node:http').request({ host: '127.0.0.1', port, method, path: p, agent: false }, (res) => {
      let text = '';
      res.on('data', (b) => (text += b));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body && JSON.stringify(body));
  });
}

test('the example: 2 workers, 200 concurrent cold requests, one load; an update seen by both', async () => {
  if (!fs.existsSync(path.join(dir, 'node_modules/nearcache'))) {
    // a link to client/node: no lock file to keep in step with it
    execFileSync('npm', ['install', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'ignore' });
  }
  const redis = await new Redis().start();
  const daemon = await new Daemon(redis).start();
  const port = await freePort();
  let out = '';
  const srv = spawn(process.execPath, ['server.mjs'], {
    cwd: dir, env: { ...process.env, NEARCACHE_URL: daemon.url, PORT: String(port), WORKERS: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  srv.stdout.on('data', (b) => (out += b));
  srv.stderr.on('data', (b) => (out += b));
  try {
    await waitUntil(() => out.includes('listening'), 20000, `the example to listen; output:\n${out}`);
    const all = await Promise.all(Array.from({ length: 200 }, () => http(port, 'GET', '/products/1')));
    for (const r of all) assert.deepEqual(r, { status: 200, body: { id: 1, name: 'lamp', price: 30 } });
    assert.deepEqual((await http(port, 'GET', '/_db/loads')).body, { loads: 1 });
    assert.equal((await http(port, 'GET', '/products/9')).status, 404);
    assert.equal((await http(port, 'PUT', '/products/1', { name: 'lamp', price: 35 })).status, 200);
    for (let i = 0; i < 20; i++) assert.equal((await http(port, 'GET', '/products/1')).body.price, 35);
  } finally {
    const done = new Promise((r) => srv.once('exit', r));
    srv.kill('SIGTERM');
    await done;
    await daemon.cleanup();
    await redis.stop();
  }
});
