// One cold key, 200 concurrent cached() calls over 2 processes on 2 daemons
// (one Redis): the lease lets one caller load it (bench/stampede.js does
// each process's half, as the benchmark runs it).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { withDaemons } = require('./procs');

function half(url, redisPort, ns, at) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(__dirname, '../bench/stampede.js'), 'nearcache', url, String(redisPort), ns, String(at)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b) => (out += b));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}`))));
  });
}

test('200 concurrent cold calls over 2 processes on 2 daemons load once', async () => {
  await withDaemons(2, async (r, a, b) => {
    const at = Date.now() + 1500;
    const got = await Promise.all([half(a.url, r.port, 'hot', at), half(b.url, r.port, 'hot', at)]);
    assert.deepEqual(got.map((x) => [x.calls, x.errors]), [[100, 0], [100, 0]]);
    assert.equal(got[0].loads + got[1].loads, 1);
  });
});
