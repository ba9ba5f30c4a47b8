/**
 * Real servers for the remote-imagery tests, each on a loopback port of its own: Debian's nginx
 * serving a folder over HTTP (Range requests and ETags as nginx gives them), an S3-compatible
 * server (s3rver) with a bucket, and a stalling proxy in front of nginx that can stop answering.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeObject } from '../../store/objects.ts';
import { freePort } from './servers.ts';
import { sleep } from './procs.ts';

/** Whether Debian's nginx is installed (.ci/run installs it); the HTTP tests skip with a message where not. */
export function nginxBinary(): string | null {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx'])
    try {
      execFileSync(p, ['-v'], { stdio: 'pipe' });
      return p;
    } catch {
      /* not there */
    }
  return null;
}

/** nginx serving `root` on 127.0.0.1 (static files: byte ranges, ETags from size and mtime). */
export class StaticNginx {
  private proc?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'tuban-nginx-'));
  port = 0;
  constructor(
    private readonly binary: string,
    readonly root: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(this.dir, t));
    const conf = join(this.dir, 'nginx.conf');
    writeFileSync(
      conf,
      `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
pid ${this.dir}/nginx.pid;
error_log ${this.dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${this.dir}/body;
  proxy_temp_path ${this.dir}/proxy;
  fastcgi_temp_path ${this.dir}/fastcgi;
  uwsgi_temp_path ${this.dir}/uwsgi;
  scgi_temp_path ${this.dir}/scgi;
  server {
    listen 127.0.0.1:${this.port};
    root ${this.root};
  }
}
`,
    );
    this.proc = spawn(this.binary, ['-p', this.dir, '-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`${this.url}/`, { method: 'HEAD' }).then(
        () => true,
        () => false,
      );
      if (up) return;
      await sleep(50);
    }
    let log = '';
    try {
      log = readFileSync(join(this.dir, 'error.log'), 'utf8');
    } catch {
      /* none */
    }
    throw new Error(`nginx on port ${this.port} did not start: ${log}`);
  }

  async stop(): Promise<void> {
    this.proc?.kill('SIGQUIT');
    await sleep(100);
    this.proc?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * s3rver (an S3-compatible server in this process) with the given buckets; its one key is S3RVER /
 * S3RVER. It refuses unknown access key ids but does not verify version 4 signatures, so a wrong
 * secret with the right key id gets in: the credentials test uses a key id it does not know.
 */
export class LocalS3 {
  private server?: import('s3rver').default;
  private readonly dir = mkdtempSync(join(tmpdir(), 'tuban-s3-'));
  port = 0;
  static readonly accessKeyId = 'S3RVER';
  static readonly secretAccessKey = 'S3RVER';
  /** `address`: where it listens (default 127.0.0.1). */
  constructor(
    private readonly buckets: string[],
    private readonly address = '127.0.0.1',
  ) {}

  get endpoint(): string {
    return `http://${this.address}:${this.port}`;
  }

  /** The settings that point tuban at this server. */
  get env(): Record<string, string> {
    return {
      TUBAN_S3_ENDPOINT: this.endpoint,
      TUBAN_S3_ACCESS_KEY_ID: LocalS3.accessKeyId,
      TUBAN_S3_SECRET_ACCESS_KEY: LocalS3.secretAccessKey,
    };
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const { default: S3rver } = await import('s3rver');
    this.server = new S3rver({
      address: this.address,
      port: this.port,
      silent: true,
      directory: this.dir,
      configureBuckets: this.buckets.map((name) => ({ name })),
    });
    await this.server.run();
  }

  async stop(): Promise<void> {
    await this.server?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Sets environment variables (what the byte sources and the object store read) for the duration of `fn`, then puts them back. */
export async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(old))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

/** Uploads every file of `dir` to s3://bucket/prefix/ on `s3`, through tuban's own object writer. */
export function uploadFolder(s3: LocalS3, bucket: string, prefix: string, dir: string): Promise<string[]> {
  return withEnv(s3.env, async () => {
    const keys: string[] = [];
    for (const f of readdirSync(dir).sort()) {
      keys.push(`s3://${bucket}/${prefix}/${f}`);
      await writeObject(keys.at(-1)!, readFileSync(join(dir, f)));
    }
    return keys;
  });
}

/**
 * An HTTP proxy to `target` that, once `stall` is set, takes requests and never answers them:
 * all of them, or (`'ranges'`) only the ranged reads, so that a file still opens (HEAD) and then
 * stops answering mid-read.
 */
export class StallingProxy {
  stall: false | 'all' | 'ranges' = false;
  private server?: Server;
  private readonly held = new Set<{ destroy(): void }>();
  port = 0;
  constructor(private readonly target: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const t = new URL(this.target);
    this.server = createServer((req, res) => {
      if (this.stall === 'all' || (this.stall === 'ranges' && req.headers.range)) {
        this.held.add(res.socket!);
        return;
      }
      const up = request(
        { host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const s of this.held) s.destroy();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}
