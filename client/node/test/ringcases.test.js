// Conformance: the near tier (the addon over client/near.c) runs
// tests/conformance/ring.json as docs/protocol.md ("The reader's
// scenarios") says a runner does: the layout, hash, stamp and reply tables,
// then every scenario with a writer of its own (positioned writes to the
// file, which the tier has mapped shared).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { REPO, sleep } = require('./procs');
const { NearTier, addon } = require('../lib/near');

const SPEC = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/conformance/ring.json'), 'utf8'));
const L = SPEC.layout;

function nowMs() {
  return process.hrtime.bigint() / 1000000n; // CLOCK_MONOTONIC, as the ring's
}

test('the layout table is common/ring.h\'s, as the addon was built', () => {
  for (const [name, want] of Object.entries(L)) {
    const got = addon.layout[name];
    assert.equal(name === 'magic' ? got.toString('hex') : got, want, name);
  }
});

test('the hash vectors are FNV-1a 64 and the stamp vectors the key mix', () => {
  for (const [name, want] of Object.entries(SPEC.hashes)) assert.equal(addon.hash(name).toString(16).padStart(16, '0'), want, name);
  for (const row of SPEC.stamps) {
    const nsh = addon.hash(row.ns);
    assert.equal(Number(nsh % BigInt(L.stamps)), row.ns_stamp, JSON.stringify(row));
    if (row.key !== undefined) {
      const mix = addon.keyMix(nsh, addon.hash(row.key));
      assert.equal(mix.toString(16).padStart(16, '0'), row.mix);
      assert.equal(Number(mix % BigInt(L.stamps)), row.key_stamp);
    }
  }
});

test('a reply fills the tier as the replies table says', () => {
  const names = ['nothing', 'value', 'negative'];
  for (const r of SPEC.replies) {
    assert.equal(names[addon.keepOf(r.found, r.negative, r.stale, r.lease !== 'NONE', r.ttl_ms)], r.keep, r.name);
  }
});

/** The writer: what the daemon does to its ring, by positioned writes. */
class Writer {
  constructor(file) {
    this.file = file;
    this.fd = -1;
  }

  replace(content) {
    this.close();
    fs.writeFileSync(`${this.file}.tmp`, content);
    fs.renameSync(`${this.file}.tmp`, this.file);
  }

  create(s) {
    const len = s.length ?? L.slots_at + L.slot_size * s.slots;
    const b = Buffer.alloc(Math.max(len, L.slots_at));
    Buffer.from(L.magic, 'hex').copy(b, 0);
    b.writeUInt32LE(s.layout ?? L.layout, L.layout_at);
    b.writeUInt32LE(s.slot_size ?? L.slot_size, L.slot_size_at);
    b.writeBigUInt64LE(BigInt(s.slots), L.slot_count_at);
    b.writeBigUInt64LE(BigInt(s.epoch), L.epoch_at);
    if (s.serving_in_ms) b.writeBigInt64LE(nowMs() + BigInt(s.serving_in_ms), L.serving_until_at);
    this.replace(b.subarray(0, len));
    this.fd = fs.openSync(this.file, 'r+');
    this.slots = s.slots;
  }

  put(at, v, signed = false) {
    const b = Buffer.alloc(8);
    if (signed) b.writeBigInt64LE(BigInt(v));
    else b.writeBigUInt64LE(BigInt(v));
    fs.writeSync(this.fd, b, 0, 8, at);
  }

  put32(at, v) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    fs.writeSync(this.fd, b, 0, 4, at);
  }

  get(at) {
    const b = Buffer.alloc(8);
    fs.readSync(this.fd, b, 0, 8, at);
    return b.readBigUInt64LE();
  }

  publish(kind, nsh, kh) {
    const seq = this.get(L.head_at) + 1n;
    const at = L.slots_at + Number(seq % BigInt(this.slots)) * L.slot_size;
    this.put(at + L.slot_seq_at, 0);
    this.put32(at + L.slot_kind_at, kind);
    this.put(at + L.slot_ns_hash_at, nsh);
    this.put(at + L.slot_key_hash_at, kh);
    this.put(at + L.slot_seq_at, seq);
    this.put(L.head_at, seq);
  }

  close() {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

async function run(sc, dir) {
  const file = path.join(dir, 'nc.sock.ring');
  const w = new Writer(file);
  const tickets = new Map();
  let tier = null;
  const H = (name) => BigInt(`0x${SPEC.hashes[name]}`);
  const where = (i, st) => `${sc.name}: step ${i} ${JSON.stringify(st)}`;
  try {
    for (const [i, st] of sc.steps.entries()) {
      switch (st.op) {
        case 'create': w.create(st); break;
        case 'raw': w.replace(Buffer.from(st.text.repeat(st.repeat ?? 1))); break;
        case 'publish':
          for (let k = 0; k < (st.times ?? 1); k++) {
            if (st.key !== undefined) w.publish(L.kind_key, H(st.ns), H(st.key));
            else w.publish(L.kind_namespace, H(st.ns), 0n);
          }
          break;
        case 'flush': w.put(L.flush_gen_at, w.get(L.flush_gen_at) + 1n); break;
        case 'epoch': w.put(L.epoch_at, st.epoch); break;
        case 'serve': w.put(L.serving_until_at, st.until ?? nowMs() + BigInt(st.in_ms), true); break;
        case 'stop':
          w.put(L.serving_until_at, 0);
          w.put(L.epoch_at, 0);
          fs.unlinkSync(file);
          break;
        case 'tear': w.put(L.slots_at + Number(BigInt(st.seq) % BigInt(w.slots)) * L.slot_size + L.slot_seq_at, 0); break;
        case 'head': w.put(L.head_at, st.head); break;
        case 'open': tier = new NearTier(file, st.max_bytes ?? 1048576, st.max_ttl_ms ?? 60000); break;
        case 'get': {
          const v = tier.get(st.ns, st.key);
          if (st.negative) assert.equal(v, null, where(i, st));
          else if (st.want === null) assert.equal(v, undefined, where(i, st));
          else assert.equal(v?.toString(), st.want, where(i, st));
          if (st.ttl_max !== undefined) {
            const ttl = tier.lastTtlMs();
            assert.ok(ttl > 0 && ttl <= st.ttl_max, `${where(i, st)}: ttl ${ttl}`);
          }
          break;
        }
        case 'ticket': tickets.set(st.name, tier.ticket()); break;
        case 'fill': {
          const t = st.ticket !== undefined ? tickets.get(st.ticket) : tier.ticket();
          const value = st.negative ? null : Buffer.from(st.value.repeat(st.repeat ?? 1));
          tier.fill(t, st.ns, st.key, value, st.ttl_ms);
          break;
        }
        case 'drop': tier.drop(st.ns, st.key); break;
        case 'drop_ns': tier.dropNs(st.ns); break;
        case 'forget': tier.forget(); break;
        case 'sleep': await sleep(st.ms); break;
        case 'stats': {
          const s = tier.stats();
          const names = { fills_refused: 'fillsRefused' };
          for (const [k, want] of Object.entries(st)) {
            if (k === 'op') continue;
            const got = s[names[k] ?? k];
            if (k === 'problem' && Array.isArray(want)) {
              assert.ok(got.includes(file), `${where(i, st)}: problem ${got}`);
              for (const word of want) assert.ok(got.toLowerCase().includes(word.toLowerCase()), `${where(i, st)}: problem ${got}`);
            } else {
              assert.equal(got, want, `${where(i, st)}: ${k}`);
            }
          }
          break;
        }
        default:
          throw new Error(`${where(i, st)}: unknown op`);
      }
    }
  } finally {
    tier?.close();
    w.close();
  }
}

for (const sc of SPEC.scenarios) {
  test(`ring scenario: ${sc.name}`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodering-'));
    try {
      await run(sc, dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
