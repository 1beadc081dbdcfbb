// nearBytes is an honest bound (issue 18): what malloc holds for a full
// near tier, after a full collection, is at most 1.1 x nearBytes, with small
// and with large values.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

for (const vsize of [100, 1000, 16384, 1024 * 1024]) {
  test(`a full near tier of ${vsize}-byte values holds at most 1.1 x nearBytes`, () => {
    // A value is kept only if it fits in one of the tier's 16 shards.
    const max = (vsize < 1024 * 1024 ? 8 : 32) * 1024 * 1024;
    const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'nearbytes-child.js'), String(max), String(vsize)]);
    const r = JSON.parse(out);
    assert.ok(r.evictions > 0 && r.charged <= max, JSON.stringify(r));
    assert.ok(r.held <= 1.1 * max, `malloc holds ${r.held} bytes for nearBytes ${max} (${(r.held / max).toFixed(3)}x): ${JSON.stringify(r)}`);
  });
}
