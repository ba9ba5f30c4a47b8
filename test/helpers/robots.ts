import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a test robot received. */
export interface Received {
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: any;
}

/** What a test robot does with the n-th request (1-based): answer it, or hold it unanswered. */
export type RobotBehaviour = (n: number, r: Received) => { status: number; body: unknown } | 'hang';

export const OK = { status: 200, body: { errcode: 0, errmsg: 'ok' } };

/**
 * A local HTTP server standing in for a 企业微信 or 钉钉 group robot: it records every request and
 * answers as `behave` says — the recorder says ok to all, others fail a few times, refuse, or hang.
 */
export class Robot {
  readonly received: Received[] = [];
  readonly held: ServerResponse[] = [];
  private server: Server;
  private waiters: (() => void)[] = [];

  constructor(public behave: RobotBehaviour = () => OK) {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString('utf8')));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://robot');
        const r: Received = {
          path: u.pathname,
          query: u.searchParams,
          headers: req.headers,
          body: JSON.parse(text || '{}'),
        };
        this.received.push(r);
        for (const w of this.waiters.splice(0)) w();
        const a = this.behave(this.received.length, r);
        if (a === 'hang') {
          this.held.push(res);
          return;
        }
        res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return this;
  }

  /** The robot's webhook address at `path` with `query`. */
  url(path: string, query = ''): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}${query ? `?${query}` : ''}`;
  }

  /** Resolves once `n` requests have arrived (rejects after `timeoutMs`). */
  async until(n: number, timeoutMs = 60_000): Promise<void> {
    const t0 = Date.now();
    while (this.received.length < n) {
      if (Date.now() - t0 > timeoutMs)
        throw new Error(`the robot got ${this.received.length} of ${n} requests within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Requests to `path` alone. */
  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
