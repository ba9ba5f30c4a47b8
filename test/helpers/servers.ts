import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './procs.ts';

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * A redis-server this test owns, on its own port, with an append-only file so that a restart
 * keeps the queues (as a production Redis for BullMQ must be configured).
 */
export class ThrowawayRedis {
  private proc?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'tuban-redis-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      try {
        execFileSync('redis-cli', ['-p', String(this.port), 'ping'], { stdio: 'pipe' });
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`throwaway redis-server on port ${this.port} did not start`);
  }

  /** SHUTDOWN (writes the AOF) and wait for the process to end. */
  async stop(): Promise<void> {
    if (!this.proc) return;
    const ended = new Promise((r) => this.proc!.on('exit', r));
    try {
      execFileSync('redis-cli', ['-p', String(this.port), 'shutdown'], { stdio: 'pipe' });
    } catch {
      /* the connection drops as it shuts down */
    }
    await ended;
    this.proc = undefined;
  }

  async destroy(): Promise<void> {
    this.proc?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A PostgreSQL cluster this test owns (initdb in a temp folder, its own port), run as the postgres user. */
export class ThrowawayPostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'tuban-pg-'));
  private readonly bin = join('/usr/lib/postgresql', readdirSync('/usr/lib/postgresql').sort().pop()!, 'bin');
  constructor(readonly port: number) {
    chmodSync(this.dir, 0o755);
    chownSync(
      this.dir,
      Number(execFileSync('id', ['-u', 'postgres']).toString()),
      Number(execFileSync('id', ['-g', 'postgres']).toString()),
    );
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private asPostgres(cmd: string, args: string[]): string {
    const real =
      process.getuid?.() === 0
        ? (['runuser', ['-u', 'postgres', '--', cmd, ...args]] as const)
        : ([cmd, args] as const);
    return execFileSync(real[0], real[1] as string[], { stdio: 'pipe' }).toString();
  }

  init(): void {
    this.asPostgres(join(this.bin, 'initdb'), [
      '-D',
      join(this.dir, 'data'),
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
    ]);
  }

  start(): void {
    this.asPostgres(join(this.bin, 'pg_ctl'), [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`,
      'start',
    ]);
  }

  restart(): void {
    this.asPostgres(join(this.bin, 'pg_ctl'), [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-m',
      'fast',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`,
      'restart',
    ]);
  }

  destroy(): void {
    try {
      this.asPostgres(join(this.bin, 'pg_ctl'), ['-D', join(this.dir, 'data'), '-m', 'immediate', 'stop']);
    } catch {
      /* already stopped */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
