/**
 * Where tuban keeps the files it makes for later: evidence photos and the previews of registered
 * imagery. `TUBAN_STORAGE_URL=s3://bucket/prefix` puts them in an S3-compatible store (the same
 * settings as s3:// imagery: TUBAN_S3_ENDPOINT, credentials), so a server or worker on any host
 * reads what another wrote; unset, they live under TUBAN_DATA_DIR as before. Each file's location
 * (a local path or an s3:// URL) is stored in the database, so files kept before a switch still
 * read. The server's exports need no store (each is made for its request and streamed); `tuban
 * patches export -o s3://…` writes a month's list there for the towns to fetch (writeObject).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { BadInputError } from '../core/errors.ts';
import { isRemote, remoteError, remoteSettings, s3Client } from '../pipeline/io/byte.source.ts';

export interface ObjectStore {
  /** Where objects go, for messages: a folder or s3://bucket/prefix. */
  readonly root: string;
  /** Stores `bytes` under `key` (a relative path, "/"-separated) whole or not at all; returns the location to keep. */
  put(key: string, bytes: Uint8Array, contentType?: string): Promise<string>;
  /** The location put() gives `key`, without writing anything. */
  locate(key: string): string;
  /** Removes what put() stored under `key` (nothing there: nothing to do). */
  remove(key: string): Promise<void>;
}

/** The store TUBAN_STORAGE_URL names, or the data folder. */
export function objectStore(config: { TUBAN_STORAGE_URL?: string; dataDir: string }): ObjectStore {
  const url = config.TUBAN_STORAGE_URL;
  if (!url) return new FolderStore(config.dataDir);
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(url);
  if (!m)
    throw new BadInputError('bad_setting', `TUBAN_STORAGE_URL=${url}: expected s3://bucket or s3://bucket/prefix`, {
      variable: 'TUBAN_STORAGE_URL',
    });
  return new S3Store(m[1], m[2].replace(/\/+$/, ''));
}

/** The bytes at `location`, as put() returned it: a local path or an s3:// (or http(s)://) URL. */
export async function readObject(location: string): Promise<Buffer> {
  if (!isRemote(location)) return readFile(location);
  if (!/^s3:\/\//i.test(location)) {
    const r = await fetch(location);
    if (!r.ok) throw remoteError(location, Object.assign(new Error(r.statusText), { cause: { statusCode: r.status } }));
    return Buffer.from(await r.arrayBuffer());
  }
  const url = new URL(location);
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  try {
    const r = await (
      await s3Client(remoteSettings())
    ).send(new GetObjectCommand({ Bucket: url.hostname, Key: decodeURIComponent(url.pathname.slice(1)) }));
    return Buffer.from(await r.Body!.transformToByteArray());
  } catch (err) {
    throw remoteError(location, err);
  }
}

/** Writes `bytes` to an s3://bucket/key location (an export sent to the store). */
export async function writeObject(location: string, bytes: Uint8Array, contentType?: string): Promise<void> {
  const m = /^s3:\/\/([^/]+)\/(.+)$/i.exec(location);
  if (!m) throw new BadInputError('bad_location', `${location}: expected s3://bucket/key`, { file: location });
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  try {
    await (
      await s3Client(remoteSettings())
    ).send(new PutObjectCommand({ Bucket: m[1], Key: m[2], Body: bytes, ContentType: contentType }));
  } catch (err) {
    throw remoteError(location, err);
  }
}

class FolderStore implements ObjectStore {
  constructor(readonly root: string) {}

  locate(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  async remove(key: string): Promise<void> {
    await rm(this.locate(key), { force: true });
  }

  async put(key: string, bytes: Uint8Array): Promise<string> {
    const file = this.locate(key);
    await mkdir(dirname(file), { recursive: true });
    // written whole, then renamed: a reader never sees half a file, two writers never share a temp file
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, file);
    return file;
  }
}

class S3Store implements ObjectStore {
  constructor(
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  get root(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  locate(key: string): string {
    return `s3://${this.bucket}/${this.prefix ? `${this.prefix}/${key}` : key}`;
  }

  async put(key: string, bytes: Uint8Array, contentType?: string): Promise<string> {
    const location = this.locate(key);
    await writeObject(location, bytes, contentType);
    return location;
  }

  async remove(key: string): Promise<void> {
    const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
    const location = this.locate(key);
    try {
      await (
        await s3Client(remoteSettings())
      ).send(new DeleteObjectCommand({ Bucket: this.bucket, Key: location.slice(`s3://${this.bucket}/`.length) }));
    } catch (err) {
      throw remoteError(location, err);
    }
  }
}
