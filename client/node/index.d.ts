// Types of the nearcache package (docs/node.md). TTLs are in seconds (as
// Redis's EX), timeouts in milliseconds (as AbortSignal.timeout).

/// <reference types="node" />

export type Bytes = string | Uint8Array;

export interface ConnectOptions {
  /** Bytes of values this process keeps in its near tier (default 64 MiB; 0: none). */
  nearBytes?: number;
  /** Seconds a near-tier entry lives at most (default 60). */
  nearMaxTtl?: number;
  /** The ring file, if not the socket's path + ".ring". */
  nearRing?: string;
  /** Default per-call deadline in ms (default 1000). */
  timeout?: number;
  /** Don't dial until the first call. */
  lazy?: boolean;
  /** Reject an invalidation the daemon could not take instead of keeping it quietly (R2). */
  strict?: boolean;
  /** How many invalidations are kept while the daemon is unreachable (default 1000). */
  maxPendingInvalidations?: number;
}

export interface CallOptions {
  /** This call's deadline in ms (default: the client's). */
  timeout?: number;
  signal?: AbortSignal;
}

export interface GetOptions extends CallOptions {
  /** On a miss in both tiers, take the key's lease (or wait for its holder). */
  lease?: boolean;
  /** Seconds the lease lasts (default: the daemon's lease_ttl). */
  leaseTtl?: number;
  /** Sliding TTL in seconds: keep the key alive this long after each read. */
  slideTtl?: number;
}

export type Source = 'near' | 'l1' | 'l2' | 'unspecified';
export type LeaseState = 'none' | 'granted' | 'waited' | 'busy';

export interface GetResult {
  /** The value, or null (not found, or a GRANTED/BUSY lease without a stale value). */
  value: Buffer | null;
  found: boolean;
  source: Source;
  ttlMs: number;
  stale: boolean;
  staleMs: number;
  /** Not found, and known absent (a negative entry). */
  negative: boolean;
  lease: LeaseState;
  leaseToken: Buffer | null;
}

export interface SetOptions extends CallOptions {
  /** Seconds to live (default: the daemon's default_ttl). */
  ttl?: number;
  leaseToken?: Bytes;
  /** Store "known absent" instead of the value. */
  negative?: boolean;
  /** Seconds the value may still be served, marked stale, past its TTL. */
  staleWhileRevalidate?: number;
}

export interface InvalidateOptions extends CallOptions {
  /** Reject with UnavailableError when the daemon is unreachable (it is still kept). */
  strict?: boolean;
}

export interface DeleteOptions extends InvalidateOptions {
  /** Release this lease instead of deleting the value. */
  leaseToken?: Bytes;
}

export type MSetEntry = [Bytes, Bytes] | { key: Bytes; value: Bytes; ttl?: number };

export interface FetchOptions extends CallOptions {
  ttl?: number;
  leaseTtl?: number;
  /** Cache a null from the loader this many seconds. */
  negativeTtl?: number;
  /** Call the loader when the daemon cannot be reached. */
  failOpen?: boolean;
}

export type Loader = () => Bytes | null | undefined | Promise<Bytes | null | undefined>;

export interface PingInfo {
  version: string;
  nodeId: string;
  uptimeMs: number;
  redisUp: boolean;
  subscribed: boolean;
  l1Serving: boolean;
  maxRequestSize: number;
  /** The wire protocol's version the daemon speaks (1; a daemon without the field: 1). */
  protocolVersion: number;
  /** Why no Redis connection is up ("" while one is). */
  redisError: string;
}

export interface NamespaceStat {
  ns: Buffer;
  hits: number;
  misses: number;
  other: boolean;
  truncated: boolean;
}

export interface Stats {
  /** Counters and gauges by name (docs/protocol.md, Stats). */
  stats: Record<string, number>;
  namespaces: NamespaceStat[];
}

export interface NearStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  evictions: number;
  flushes: number;
  laps: number;
  fillsRefused: number;
  serving: boolean;
  problem: string;
}

export declare class Client {
  constructor(url?: string, opts?: ConnectOptions);
  readonly url: string;
  /** Invalidations kept for the daemon, not sent yet (R2). */
  readonly pendingInvalidations: number;
  get(ns: Bytes, key: Bytes, opts?: CallOptions): Promise<Buffer | null>;
  getEx(ns: Bytes, key: Bytes, opts?: GetOptions): Promise<GetResult>;
  set(ns: Bytes, key: Bytes, value: Bytes, opts?: SetOptions): Promise<number>;
  delete(ns: Bytes, key: Bytes, opts?: DeleteOptions): Promise<boolean>;
  mget(ns: Bytes, keys: readonly Bytes[], opts?: CallOptions): Promise<(Buffer | null)[]>;
  mset(ns: Bytes, entries: Iterable<MSetEntry> | Map<Bytes, Bytes> | Record<string, Bytes>,
    opts?: SetOptions): Promise<number>;
  bump(ns: Bytes, opts?: InvalidateOptions): Promise<number>;
  fetch(ns: Bytes, key: Bytes, opts: FetchOptions, loader: Loader): Promise<Buffer | null>;
  fetch(ns: Bytes, key: Bytes, loader: Loader): Promise<Buffer | null>;
  stats(opts?: CallOptions): Promise<Stats>;
  ping(opts?: CallOptions): Promise<PingInfo>;
  nearStats(): NearStats | null;
  /** Sends raw nearcache.v1.Request bytes; resolves with the decoded Reply whatever its code. */
  request(raw: Uint8Array, opts?: CallOptions): Promise<unknown>;
  close(): Promise<void>;
}

export declare function connect(url?: string, opts?: ConnectOptions): Promise<Client>;

export interface Codec<T> {
  encode(value: T): Bytes;
  decode(bytes: Buffer): T;
  /** The same decode from the bytes read as UTF-8: lets a near-tier hit skip making a Buffer. */
  decodeString?(text: string): T;
}

export interface CachedOptions<A extends unknown[], T> {
  client: Client;
  ns: string;
  /** Seconds to live (default: the daemon's default_ttl). */
  ttl?: number;
  /** The key of a call's arguments (default: the one argument, or JSON of them all). */
  key?: (...args: A) => string;
  /** JSON by default; codecs.buffer keeps Buffers as they are. */
  codec?: Codec<T>;
  leaseTtl?: number;
  timeout?: number;
  /** Call fn when the daemon cannot be reached (default true). */
  failOpen?: boolean;
}

export type Cached<A extends unknown[], T> = ((...args: A) => Promise<T>) & {
  /** Deletes the cached result of these arguments on every host. */
  invalidate(...args: A): Promise<boolean>;
  /** Drops every cached result of the namespace on every host. */
  bump(): Promise<number>;
  keyOf(...args: A): string;
};

export declare function cached<A extends unknown[], T>(
  fn: (...args: A) => T | Promise<T>, opts: CachedOptions<A, T>): Cached<A, Awaited<T>>;

export declare const codecs: { json: Codec<any>; buffer: Codec<Buffer> };
export declare const DEFAULT_URL: string;

export declare class NearcacheError extends Error {
  constructor(message: string, status?: number, options?: { cause?: unknown });
  /** After a failed mset whose answer named its entries: the keys not stored. */
  notStored?: Buffer[];
  /** ...and the keys whose write may have run (retrying them is safe). */
  maybeStored?: Buffer[];
  /** The gRPC status name, e.g. 'UNAVAILABLE'. */
  readonly code: string;
  /** The gRPC status number. */
  readonly status: number;
}
export declare class CancelledError extends NearcacheError {}
export declare class InvalidArgumentError extends NearcacheError {}
export declare class DeadlineExceededError extends NearcacheError {}
export declare class NotFoundError extends NearcacheError {}
export declare class PermissionDeniedError extends NearcacheError {}
export declare class ResourceExhaustedError extends NearcacheError {}
export declare class FailedPreconditionError extends NearcacheError {}
export declare class AbortedError extends NearcacheError {}
export declare class UnimplementedError extends NearcacheError {}
export declare class InternalError extends NearcacheError {}
export declare class UnavailableError extends NearcacheError {}
export declare class ProtocolError extends NearcacheError {}
