// Compiled by `tsc --noEmit` (npm run lint): the shipped types as a user writes them.
import { connect, cached, codecs, NearcacheError, UnavailableError, type Client } from 'nearcache';

async function main(): Promise<void> {
  const c: Client = await connect(undefined, { nearBytes: 1 << 20, nearMaxTtl: 30, timeout: 500 });
  const v: Buffer | null = await c.get('users', '42', { signal: AbortSignal.timeout(100) });
  const r = await c.getEx('users', '42', { lease: true });
  if (r.lease === 'granted' && r.leaseToken) await c.set('users', '42', 'x', { ttl: 60, leaseToken: r.leaseToken });
  const all: (Buffer | null)[] = await c.mget('users', ['1', '2']);
  await c.mset('users', [['1', 'a'], { key: '2', value: Buffer.from('b'), ttl: 5 }], { ttl: 60 });
  const ver: number = await c.bump('users');
  const existed: boolean = await c.delete('users', '42');
  const f = await c.fetch('users', '7', { ttl: 60 }, async () => 'loaded');
  const user = cached(async (id: number) => ({ id }), { client: c, ns: 'users', ttl: 60 });
  const u: { id: number } = await user(1);
  await user.invalidate(1);
  const raw = cached((id: string) => Buffer.from(id), { client: c, ns: 'raw', codec: codecs.buffer });
  const b: Buffer = await raw('x');
  const j = cached(async (id: number) => ({ id }), { client: c, ns: 'j', codec: codecs.json });
  const jv: { id: number } = await j(2);
  console.log(jv);
  try {
    await c.ping();
  } catch (e) {
    if (e instanceof UnavailableError || e instanceof NearcacheError) console.log(e.code, e.status);
  }
  console.log(v, all, ver, existed, f, u, b, c.nearStats()?.hits, (await c.stats()).stats.l1_hits);
  await c.close();
}
void main();
