// Run by nearbytes.test.js as `node --expose-gc`: fills a near tier of
// argv[2] bytes with three times that much (keys of 8 bytes, values of
// argv[3] bytes) over a ring that serves, and prints what malloc holds for
// it after a full collection, with what the tier charged.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { NearTier, addon } = require('../lib/near');

const max = Number(process.argv[2]);
const vsize = Number(process.argv[3]);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nearbytes-'));
const file = path.join(dir, 'r.ring');
const L = addon.layout;
const b = Buffer.alloc(L.slots_at + 64 * L.slot_size);
L.magic.copy(b, 0);
b.writeUInt32LE(L.layout, L.layout_at);
b.writeUInt32LE(L.slot_size, L.slot_size_at);
b.writeBigUInt64LE(64n, L.slot_count_at);
b.writeBigUInt64LE(1n, L.epoch_at);
b.writeBigInt64LE(process.hrtime.bigint() / 1000000n + 600000n, L.serving_until_at);
fs.writeFileSync(file, b);

global.gc();
global.gc();
const before = addon.mallocBytes();
const tier = new NearTier(file, max, 600000);
const value = Buffer.alloc(vsize, 7);
const n = Math.ceil((3 * max) / (vsize + 8));
for (let i = 0; i < n; i++) {
  const t = tier.ticket();
  tier.fill(t, 'ns', `k${String(i).padStart(7, '0')}`, value, 600000);
}
global.gc();
global.gc();
const held = addon.mallocBytes() - before;
const s = tier.stats();
console.log(JSON.stringify({ held, charged: s.bytes, entries: s.entries, evictions: s.evictions }));
tier.close();
fs.rmSync(dir, { recursive: true, force: true });
