// One process of bench.js's stampede: at the given instant, 100 concurrent
// calls of one cold key through cached() (kind nearcache, on the daemon at
// url) or through the tutorial's decorator over ioredis (kind ioredis);
// prints the loads (a 50 ms database read each) and the calls.
'use strict';
const nc = require('..');

const [kind, url, redisPort, ns, at] = process.argv.slice(2);
let loads = 0;
const load = async (id) => {
  loads++;
  await new Promise((r) => setTimeout(r, 50));
  return { id, name: 'hot' };
};

(async () => {
  let call;
  let done = async () => {};
  if (kind === 'nearcache') {
    const c = await nc.connect(url, { timeout: 3000 });
    call = nc.cached(load, { client: c, ns, ttl: 60 });
    done = () => c.close();
  } else {
    const Ioredis = require('ioredis');
    const io = new Ioredis(Number(redisPort), '127.0.0.1');
    await io.ping();
    call = async (id) => {
      const s = await io.get(`${ns}:${id}`);
      if (s !== null) return JSON.parse(s);
      const v = await load(id);
      await io.set(`${ns}:${id}`, JSON.stringify(v), 'EX', 60);
      return v;
    };
    done = async () => io.disconnect();
  }
  await new Promise((r) => setTimeout(r, Math.max(0, Number(at) - Date.now())));
  const rs = await Promise.allSettled(Array.from({ length: 100 }, () => call(7)));
  const errors = rs.filter((x) => x.status === 'rejected' || x.value?.name !== 'hot').length;
  await done();
  console.log(JSON.stringify({ loads, calls: rs.length, errors }));
})();
