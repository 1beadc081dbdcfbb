// The product service, cached with nearcache: node:http in `cluster`
// workers, cached() in front of a database. The database here is a small
// store held by the primary process, which the workers query over the
// cluster channel with a delay, as a real one over the network; it counts
// its loads (GET /_db/loads), so a test can see that 200 concurrent cold
// requests over both workers load a product once.
//
//   NEARCACHE_URL=ipc:///path/to/nearcached.sock PORT=8000 WORKERS=2 node server.mjs
import cluster from 'node:cluster';
import http from 'node:http';
import { connect, cached, NearcacheError } from 'nearcache';

const PORT = Number(process.env.PORT ?? 8000);
const WORKERS = Number(process.env.WORKERS ?? 2);
const DB_DELAY_MS = Number(process.env.DB_DELAY_MS ?? 20);

if (cluster.isPrimary) {
  const products = new Map([
    [1, { id: 1, name: 'lamp', price: 30 }],
    [2, { id: 2, name: 'chair', price: 80 }],
  ]);
  let loads = 0;
  let ready = 0;
  cluster.on('message', (worker, m) => {
    if (m.op === 'ready' && ++ready === WORKERS) console.log(`listening on ${PORT} with ${WORKERS} workers`);
    if (m.op === 'get') {
      loads++;
      setTimeout(() => worker.send({ rid: m.rid, row: products.get(m.id) ?? null }), DB_DELAY_MS);
    } else if (m.op === 'put') {
      products.set(m.row.id, m.row);
      worker.send({ rid: m.rid, row: m.row });
    } else if (m.op === 'loads') {
      worker.send({ rid: m.rid, row: loads });
    }
  });
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    process.exit(0);
  });
} else {
  // The database client: one request per call, answered by the primary.
  let rid = 0;
  const waiting = new Map();
  process.on('message', (m) => {
    waiting.get(m.rid)?.(m.row);
    waiting.delete(m.rid);
  });
  const db = (msg) => new Promise((resolve) => {
    waiting.set(++rid, resolve);
    process.send({ ...msg, rid });
  });

  const client = await connect(); // $NEARCACHE_URL, else the packaged socket
  const getProduct = cached((id) => db({ op: 'get', id }), { client, ns: 'product', ttl: 3600 });

  const send = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  http.createServer(async (req, res) => {
    try {
      const m = /^\/products\/(\d+)$/.exec(req.url);
      if (m && req.method === 'GET') {
        const p = await getProduct(Number(m[1]));
        return p === null ? send(res, 404, { error: 'no such product' }) : send(res, 200, p);
      }
      if (m && req.method === 'PUT') {
        let body = '';
        for await (const chunk of req) body += chunk;
        const row = { ...JSON.parse(body), id: Number(m[1]) };
        await db({ op: 'put', row }); // the write commits first,
        await getProduct.invalidate(row.id); // then every host drops it
        return send(res, 200, row);
      }
      if (req.url === '/_db/loads') return send(res, 200, { loads: await db({ op: 'loads' }) });
      return send(res, 404, { error: 'not found' });
    } catch (e) {
      return send(res, e instanceof NearcacheError ? 503 : 500, { error: String(e.message) });
    }
  }).listen(PORT, () => process.send({ op: 'ready' }));
}
