import { spawn, type ChildProcess } from 'node:child_process';

/** A `tuban worker` child process whose JSON log lines can be awaited. */
export class WorkerProc {
  readonly proc: ChildProcess;
  readonly events: Record<string, unknown>[] = [];
  private waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] =
    [];
  private exitCode: Promise<number | null>;
  stderr = '';

  /** `wrapper`: a command the worker runs under, e.g. `['ip', 'netns', 'exec', 'ns1']` (it must exec, not fork). */
  constructor(env: NodeJS.ProcessEnv, concurrency = 1, wrapper: string[] = []) {
    const argv = [process.execPath, 'bin/tuban.mjs', 'worker', '--concurrency', String(concurrency)];
    this.proc = spawn(wrapper[0] ?? argv[0], [...wrapper.slice(1), ...(wrapper.length ? argv : argv.slice(1))], {
      env: { ...env, TUBAN_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.exitCode = new Promise((r) => this.proc.on('exit', (code) => r(code)));
    let buf = '';
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.stderr += d;
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.startsWith('{')) continue;
        const e = JSON.parse(line) as Record<string, unknown>;
        this.events.push(e);
        this.waiters = this.waiters.filter((w) => (w.match(e) ? (w.resolve(e), false) : true));
      }
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Resolves on the next log event matching `match` (also one already seen, when `seen` is true). */
  next(match: (e: Record<string, unknown>) => boolean, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`no matching worker event within ${timeoutMs} ms; log:\n${this.stderr.slice(-2000)}`)),
        timeoutMs,
      );
      this.waiters.push({ match, resolve: (e) => (clearTimeout(t), resolve(e)) });
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }

  exited(): Promise<number | null> {
    return this.exitCode;
  }
}

/** Waits for the first of several workers to log an event, returning that worker and the event. */
export function firstEvent(
  workers: WorkerProc[],
  match: (e: Record<string, unknown>) => boolean,
  timeoutMs = 60_000,
): Promise<{ worker: WorkerProc; event: Record<string, unknown> }> {
  return Promise.race(workers.map((w) => w.next(match, timeoutMs).then((event) => ({ worker: w, event }))));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
