// The shared wire cases (tests/conformance/cases.json), byte for byte as
// every client sends them, against a fresh daemon on an empty Redis.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Redis, Daemon, REPO } = require('./procs');
const { Client } = require('../lib/client');
const { CODE_NAMES } = require('../lib/errors');

const { cases } = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/conformance/cases.json'), 'utf8'));

function field(msg, p) {
  for (const part of p.split('.')) {
    if (/^\d+$/.test(part)) msg = msg[Number(part)];
    else msg = msg[part.replace(/_([a-z])/g, (_, c) => c.toUpperCase())];
  }
  return msg;
}

function matches(got, want, names) {
  if (typeof want === 'string' && want.startsWith('$')) {
    const [name, plus] = want.slice(1).split('+');
    if (plus === undefined) {
      names[name] = got;
      return typeof got === 'number';
    }
    return got === names[name] + Number(plus);
  }
  return got === want;
}

test('every wire case gets the expected reply', async () => {
  const r = await new Redis().start();
  const d = await new Daemon(r).start();
  const c = new Client(d.url, { timeout: 5000, nearBytes: 0 });
  try {
    const names = {};
    for (const cs of cases) {
      const reply = await c.request(Buffer.from(cs.request.replace(/ /g, ''), 'hex'));
      const where = cs.name;
      assert.equal(reply.id, cs.id, where);
      assert.equal(CODE_NAMES[reply.code], cs.code, `${where}: ${reply.message}`);
      assert.ok(reply.message.includes(cs.message), where);
      if (!cs.message) assert.equal(reply.message, '', where);
      for (const [p, want] of Object.entries(cs.fields)) {
        let got = field(reply, p);
        if (got instanceof Uint8Array) got = Buffer.from(got).toString();
        assert.ok(matches(got, want, names), `${where}: ${p}: ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      }
    }
  } finally {
    await c.close();
    await d.cleanup();
    await r.stop();
  }
});
