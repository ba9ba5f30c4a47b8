/**
 * Where an image's bytes come from: a local file, an HTTP(S) URL read with Range requests, or an
 * S3 object (`s3://bucket/key`, any S3-compatible store) read with ranged GetObject. Remote
 * sources go through @chunkd (its HTTP and AWS sources, block-aligned chunks and an LRU cache for
 * the small header and offset-table reads), with retries and backoff on timeouts, 5xx and network
 * errors, and the ETag pinned: an object replaced between two reads is refused, never mixed.
 * Large block reads ask for coalesced spans (`prefetch`): one request per run of neighbouring
 * blocks, not one per block.
 *
 * Settings come from the environment (remoteSettings, parsed by config/env.ts): TUBAN_S3_ENDPOINT,
 * TUBAN_S3_REGION, credentials from TUBAN_S3_ACCESS_KEY_ID / TUBAN_S3_SECRET_ACCESS_KEY or AWS's usual
 * chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, …), TUBAN_REMOTE_TIMEOUT_MS, TUBAN_REMOTE_RETRIES. The AWS SDK and
 * the HTTP source load on first use, so commands that read only local files do not pay for them.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { SourceError, SourceView, type Source, type SourceMiddleware } from '@chunkd/source';
import { BadInputError, TransientError } from '../../core/errors.ts';
import { loadRemoteConfig } from '../../config/env.ts';

export interface ByteSource {
  /** The path or URL as given. */
  readonly location: string;
  readonly size: number;
  /** The object's ETag (remote), null for a local file. */
  readonly etag: string | null;
  /** The local file's path, for readers that take a file name (libvips); null when remote. */
  readonly localPath: string | null;
  /**
   * `length` bytes from `offset` (fewer only at the end of the file), in `into` when given (at
   * least `length` long); throws a BadInputError naming the location when they cannot be read.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Says which ranges are about to be read, so a remote source fetches them in as few requests as it can. */
  prefetch(ranges: { offset: number; length: number }[]): Promise<void>;
  /** Requests made and bytes received so far (0 for a local file). */
  readonly stats: { requests: number; bytes: number };
  close(): Promise<void>;
}

/** Requests and bytes of every remote source this process has opened, and block bytes served from the block cache instead. */
export const remoteTotals = { requests: 0, bytes: 0, cachedBytes: 0 };

/**
 * The blocks remote sources read, kept for the next part of the same scene: a part is read with
 * a margin of its neighbours' pixels, so without it the blocks along every part seam are fetched
 * twice (1.9 times the file's bytes with parts of 1024 px). Least recently used goes first once
 * TUBAN_REMOTE_CACHE_MB is exceeded; keyed by the object's ETag (or size), so a
 * replaced object is never served from an older copy.
 */
class BlockCache {
  private readonly blocks = new Map<string, Uint8Array>();
  /** Blocks being fetched now, so that two parts in flight fetch a shared block once. */
  readonly pending = new Map<string, Promise<Uint8Array>>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}

  get(key: string): Uint8Array | undefined {
    const b = this.blocks.get(key);
    if (b) {
      this.blocks.delete(key);
      this.blocks.set(key, b);
    }
    return b;
  }

  set(key: string, data: Uint8Array): void {
    if (data.length > this.maxBytes || this.blocks.has(key)) return;
    this.blocks.set(key, data);
    this.bytes += data.length;
    for (const [k, v] of this.blocks) {
      if (this.bytes <= this.maxBytes) break;
      this.blocks.delete(k);
      this.bytes -= v.length;
    }
  }
}
let blockCache: BlockCache | undefined;

/** Empties the block cache (a benchmark does, to read as a fresh worker on another host would). */
export function dropBlockCache(): void {
  blockCache = undefined;
}

/** Whether `location` is a URL tuban reads remotely (s3://, http://, https://). */
export function isRemote(location: string): boolean {
  return /^(s3|https?):\/\//i.test(location);
}

/** Remote reading settings, from the environment (config/env.ts); a bad value names its variable. */
export interface RemoteSettings {
  timeoutMs: number;
  /** Megabytes of remote blocks kept in this process (BlockCache). */
  cacheMb: number;
  retries: number;
  s3: { endpoint?: string; region: string; credentials?: { accessKeyId: string; secretAccessKey: string } };
}

export function remoteSettings(env: NodeJS.ProcessEnv = process.env): RemoteSettings {
  const c = loadRemoteConfig(env);
  const endpoint = c.TUBAN_S3_ENDPOINT ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  // TUBAN_S3_ENDPOINT is checked with the config; AWS's own variables here
  if (endpoint && !/^https?:\/\//.test(endpoint))
    throw new BadInputError('bad_setting', `TUBAN_S3_ENDPOINT=${endpoint}: expected an http:// or https:// URL`, {
      variable: 'TUBAN_S3_ENDPOINT',
    });
  const key = c.TUBAN_S3_ACCESS_KEY_ID,
    secret = c.TUBAN_S3_SECRET_ACCESS_KEY;
  return {
    timeoutMs: c.TUBAN_REMOTE_TIMEOUT_MS,
    cacheMb: c.TUBAN_REMOTE_CACHE_MB,
    retries: c.TUBAN_REMOTE_RETRIES,
    s3: {
      endpoint,
      region: c.TUBAN_S3_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
      credentials: key && secret ? { accessKeyId: key, secretAccessKey: secret } : undefined,
    },
  };
}

const clients = new Map<string, S3Client>();

/** One S3 client per endpoint and credentials (they hold the connection pool). Path-style addressing when an endpoint is set (MinIO, s3rver). */
export async function s3Client(settings: RemoteSettings): Promise<S3Client> {
  const key = JSON.stringify(settings.s3) + settings.timeoutMs;
  let c = clients.get(key);
  if (!c) {
    const { S3Client } = await import('@aws-sdk/client-s3');
    c = new S3Client({
      region: settings.s3.region,
      endpoint: settings.s3.endpoint,
      forcePathStyle: settings.s3.endpoint !== undefined,
      credentials: settings.s3.credentials,
      maxAttempts: 1, // retried below, the same way for S3 and HTTP
      requestHandler: { requestTimeout: settings.timeoutMs, connectionTimeout: settings.timeoutMs },
    });
    clients.set(key, c);
  }
  return c;
}

/** Opens `location` for ranged reads. */
export async function openByteSource(location: string): Promise<ByteSource> {
  return isRemote(location) ? RemoteByteSource.open(location, remoteSettings()) : FileByteSource.open(location);
}

/** Throws when `src` is not what registration saw (`expect`: its size and ETag then). */
export function checkUnchanged(src: ByteSource, expect: { etag?: string | null; bytes?: number | null }): void {
  const location = src.location;
  const changed = (what: string) =>
    new BadInputError(
      'changed_since_registration',
      `${location}: changed since it was registered (${what}); register the month again to use the new file`,
      { file: location },
    );
  if (expect.bytes != null && Number(expect.bytes) !== src.size)
    throw changed(`${src.size} bytes now, ${expect.bytes} then`);
  if (expect.etag && src.etag && expect.etag !== src.etag) throw changed(`ETag ${src.etag} now, ${expect.etag} then`);
}

class FileByteSource implements ByteSource {
  readonly etag = null;
  readonly stats = { requests: 0, bytes: 0 };
  private constructor(
    readonly location: string,
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  get localPath(): string {
    return this.location;
  }

  static async open(file: string): Promise<FileByteSource> {
    const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new BadInputError('file_missing', `${file}: no such file`, { file });
      throw new BadInputError('unreadable', `${file}: cannot open (${err.message})`, { file });
    });
    try {
      return new FileByteSource(file, fh, (await fh.stat()).size);
    } catch (err) {
      await fh.close();
      throw new BadInputError('unreadable', `${file}: cannot read its size (${(err as Error).message})`, { file });
    }
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = into ?? new Uint8Array(length);
    const { bytesRead } = await this.fh.read(buf, 0, length, offset).catch((err: Error) => {
      throw new BadInputError(
        'unreadable',
        `${this.location}: cannot read bytes ${offset}–${offset + length} (${err.message})`,
        {
          file: this.location,
        },
      );
    });
    return bytesRead === length ? buf : buf.subarray(0, bytesRead);
  }

  async prefetch(): Promise<void> {}

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Bytes per chunk for the small reads (headers, IFDs, offset tables), and how much of them is cached per open source. */
const CHUNK_BYTES = 64 * 1024,
  CACHE_BYTES = 16 * 1024 * 1024;
/** Ranges closer than this are fetched as one span (the gap is read and dropped), up to a span of MAX_SPAN_BYTES. */
const COALESCE_GAP_BYTES = 64 * 1024,
  MAX_SPAN_BYTES = 16 * 1024 * 1024;
/** Prefetches whose spans and cached blocks a source keeps (map tiles read one source concurrently). */
const KEPT_PREFETCHES = 8;

class RemoteByteSource implements ByteSource {
  readonly localPath = null;
  /** The spans of the last prefetches: reads inside one are sliced from it. */
  private spans: { offset: number; data: Uint8Array }[] = [];
  /** The blocks of the last prefetches found in the block cache, by offset. */
  private cached = new Map<number, Uint8Array>();

  private constructor(
    readonly location: string,
    /** Small reads: chunked and cached. */
    private readonly small: SourceView,
    /** Large reads and spans: as asked, retried. */
    private readonly large: SourceView,
    readonly size: number,
    readonly etag: string | null,
    readonly stats: { requests: number; bytes: number },
  ) {}

  static async open(location: string, settings: RemoteSettings): Promise<RemoteByteSource> {
    let make: () => Source;
    if (/^s3:\/\//i.test(location)) {
      const url = new URL(location);
      if (!url.hostname || url.pathname.length <= 1)
        throw new BadInputError('bad_location', `${location}: expected s3://bucket/key`, { file: location });
      const { SourceAwsS3 } = await import('@chunkd/source-aws');
      const client = await s3Client(settings);
      make = () => new SourceAwsS3(url, client);
    } else {
      const { SourceHttp } = await import('@chunkd/source-http');
      withTimeouts(SourceHttp, settings.timeoutMs);
      make = () => new SourceHttp(location);
    }
    const stats = { requests: 0, bytes: 0 };
    // a fresh source for each try: chunkd's sources keep their first HEAD's promise, failed or not
    let source!: Source;
    const meta = await retryCall(settings, () => {
      source = make();
      stats.requests++;
      remoteTotals.requests++;
      return source.head();
    }).catch((err) => {
      throw remoteError(location, err, settings);
    });
    const size = meta.size;
    if (size == null)
      throw new BadInputError('unreadable', `${location}: the server did not say how large the file is`, {
        file: location,
      });
    const count: SourceMiddleware = {
      name: 'tuban:count',
      fetch: async (req, next) => {
        stats.requests++;
        remoteTotals.requests++;
        const out = await next(req);
        stats.bytes += out.byteLength;
        remoteTotals.bytes += out.byteLength;
        // a server that ignores Range answers with the whole file (200): never read those bytes as the range's
        if (req.length !== undefined && req.offset >= 0 && out.byteLength !== Math.min(req.length, size - req.offset))
          throw new BadInputError(
            'range_unsupported',
            `${location}: asked for ${req.length} bytes at ${req.offset}, got ${out.byteLength}: the server does not honour Range requests`,
            { file: location },
          );
        return out;
      },
    };
    const retry = retrying(settings);
    const { SourceCache, SourceChunk } = await import('@chunkd/middleware');
    const small = new SourceView(source, [
      new SourceChunk({ size: CHUNK_BYTES }),
      new SourceCache({ size: CACHE_BYTES }),
      retry,
      count,
    ]);
    const large = new SourceView(source, [retry, count]);
    blockCache ??= new BlockCache(settings.cacheMb * 1e6);
    // the object's version: its ETag, else its Last-Modified; without either, blocks are not cached
    const version = meta.eTag ?? (meta.lastModified ? `modified ${meta.lastModified}` : null);
    return new RemoteByteSource(location, small, large, size, version, stats);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const got = await this.fetch(offset, length);
    if (!into) return got;
    into.set(got);
    return into.subarray(0, got.length);
  }

  private async fetch(offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const hit = this.cached.get(offset);
    if (hit && hit.length === length) return hit;
    for (const sp of this.spans)
      if (offset >= sp.offset && offset + length <= sp.offset + sp.data.length)
        return sp.data.subarray(offset - sp.offset, offset - sp.offset + length);
    const view = length <= CHUNK_BYTES ? this.small : this.large;
    try {
      return new Uint8Array(await view.fetch(offset, length));
    } catch (err) {
      throw remoteError(this.location, err);
    }
  }

  async prefetch(ranges: { offset: number; length: number }[]): Promise<void> {
    const version = this.etag;
    const key = (r: { offset: number; length: number }) => `${this.location}\n${version}\n${r.offset}\n${r.length}`;
    // an object without an ETag or Last-Modified has no version to key its blocks by: not cached
    const cache = version ? blockCache : undefined;
    // blocks in the cache are taken from it; blocks another part is fetching right now are waited for
    const missing = [];
    const waiting: Promise<void>[] = [];
    const cached = new Map<number, Uint8Array>();
    const take = (r: { offset: number }, b: Uint8Array) => {
      cached.set(r.offset, b);
      remoteTotals.cachedBytes += b.length;
    };
    for (const r of ranges.filter((x) => x.length > 0)) {
      const b = cache?.get(key(r));
      const pending = b ? undefined : cache?.pending.get(key(r));
      if (b) take(r, b);
      else if (pending) waiting.push(pending.then((d) => take(r, d)));
      else missing.push(r);
    }
    const sorted = missing.sort((a, b) => a.offset - b.offset);
    const spans: { offset: number; end: number }[] = [];
    for (const r of sorted) {
      const last = spans.at(-1);
      const end = r.offset + r.length;
      if (last && r.offset <= last.end + COALESCE_GAP_BYTES && end - last.offset <= MAX_SPAN_BYTES)
        last.end = Math.max(last.end, end);
      else spans.push({ offset: r.offset, end });
    }
    const fetching = spans.map(async (sp) => ({
      offset: sp.offset,
      data: new Uint8Array(await this.large.fetch(sp.offset, sp.end - sp.offset)),
    }));
    if (cache)
      for (const r of sorted) {
        const at = spans.findIndex((sp) => r.offset >= sp.offset && r.offset + r.length <= sp.end);
        const block = fetching[at].then((sp) => sp.data.slice(r.offset - sp.offset, r.offset - sp.offset + r.length));
        const k = key(r);
        cache.pending.set(k, block);
        block.then(
          (d) => {
            cache.pending.delete(k);
            cache.set(k, d);
          },
          () => cache.pending.delete(k), // the part that fetched it reports the failure
        );
      }
    // settled together, so a failed fetch that another part waits on is never left unhandled
    const settled = await Promise.allSettled([Promise.all(fetching), Promise.all(waiting)]);
    const failed = settled.find((x) => x.status === 'rejected');
    if (failed) throw remoteError(this.location, (failed as PromiseRejectedResult).reason);
    const got = (settled[0] as PromiseFulfilledResult<{ offset: number; data: Uint8Array }[]>).value;
    // kept beside the last few prefetches' (a map server reads one source for several tiles at once)
    this.spans = [...got, ...this.spans].slice(0, KEPT_PREFETCHES * 4);
    if (this.cached.size > 4096) this.cached = new Map();
    for (const [o, b] of cached) this.cached.set(o, b);
  }

  async close(): Promise<void> {
    this.spans = [];
    this.cached = new Map();
  }
}

let timeoutSet = -1;
/** chunkd's HTTP source fetches through SourceHttp.fetch: Node's fetch with a time limit per request. */
function withTimeouts(SourceHttp: typeof import('@chunkd/source-http').SourceHttp, ms: number): void {
  if (timeoutSet === ms) return;
  timeoutSet = ms;
  SourceHttp.fetch = (url, opts) =>
    fetch(url, {
      ...opts,
      signal: opts?.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms),
    }) as ReturnType<typeof SourceHttp.fetch>;
}

/** A failure worth another try: no answer, a dropped connection, 408, 429 or a 5xx. */
function transient(err: unknown): boolean {
  if (err instanceof BadInputError || (err as Error)?.name === 'CredentialsProviderError') return false;
  const code = statusOf(err);
  if (code === undefined) return true;
  return code === 408 || code === 429 || code >= 500;
}

function statusOf(err: unknown): number | undefined {
  if (SourceError.is(err)) return err.code >= 100 ? err.code : undefined;
  const e = err as { $metadata?: { httpStatusCode?: number }; cause?: { statusCode?: number } };
  return e?.$metadata?.httpStatusCode ?? e?.cause?.statusCode;
}

async function retryCall<T>(settings: RemoteSettings, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= settings.retries || !transient(err)) {
        if (err && typeof err === 'object') (err as { attempts?: number }).attempts = attempt + 1;
        throw err;
      }
      await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt) * (0.5 + Math.random())));
    }
  }
}

function retrying(settings: RemoteSettings): SourceMiddleware {
  return { name: 'tuban:retry', fetch: (req, next) => retryCall(settings, () => next(req)) };
}

/**
 * A remote failure as an error that names the location and the reason: a BadInputError where
 * trying again cannot help (not found, access refused, changed), a TransientError coded
 * `unreachable` where it may (no answer, 5xx, a dropped connection): a part job is then tried
 * again later (TUBAN_JOB_ATTEMPTS) before its tile fails.
 */
export function remoteError(location: string, err: unknown, settings?: RemoteSettings): Error {
  if (err instanceof BadInputError || err instanceof TransientError) return err;
  const code = statusOf(err);
  const tries = (err as { attempts?: number })?.attempts;
  const after = tries && tries > 1 ? ` (after ${tries} tries)` : '';
  const name = (err as Error)?.name;
  const message = String((err as Error)?.message ?? err);
  // chunkd wraps a timed-out fetch in an error of status 500: the time-out is in its causes
  const chain: unknown[] = [];
  for (let e: unknown = err; e && chain.length < 6; e = (e as { cause?: unknown }).cause) chain.push(e);
  const timedOut = chain.some(
    (e) =>
      (e as Error).name === 'TimeoutError' ||
      (e as Error).name === 'AbortError' ||
      /timed? ?out|aborted/i.test(String((e as Error).message ?? '')),
  );
  if (code === 404 || name === 'NotFound' || name === 'NoSuchKey' || name === 'NoSuchBucket')
    return new BadInputError('file_missing', `${location}: not found (404)`, { file: location }, { cause: err });
  if (
    code === 401 ||
    code === 403 ||
    name === 'AccessDenied' ||
    name === 'InvalidAccessKeyId' ||
    name === 'SignatureDoesNotMatch' ||
    name === 'CredentialsProviderError'
  )
    return new BadInputError(
      'access_refused',
      `${location}: access refused (${code ?? name}); check TUBAN_S3_ACCESS_KEY_ID / TUBAN_S3_SECRET_ACCESS_KEY or AWS_* credentials`,
      { file: location },
      { cause: err },
    );
  if (code === 409 || code === 412 || /ETag conflict/i.test(message))
    return new BadInputError(
      'changed_since_registration',
      `${location}: the file changed while it was being read (its ETag moved); register the month again`,
      { file: location },
      { cause: err },
    );
  if (timedOut)
    return new TransientError(
      `${location}: no answer within ${(settings ?? remoteSettings()).timeoutMs / 1000} s${after}`,
      { file: location, code: 'unreachable' },
      { cause: err },
    );
  return new TransientError(
    `${location}: cannot be read${code ? ` (HTTP ${code})` : ''}${after}: ${message}`,
    { file: location, code: 'unreachable' },
    { cause: err },
  );
}
