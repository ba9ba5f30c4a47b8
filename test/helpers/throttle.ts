import { createServer, connect, type Socket } from 'node:net';

export interface Link {
  /** Bits per second towards the browser. */
  downBps: number;
  /** Bits per second towards the server. */
  upBps: number;
  /** Round trip, ms: half each way on every byte, a whole one to open a connection. */
  rttMs: number;
}

/** A 3G phone at a building site, as issue 31 measures it: 1.6 Mbps down, 750 kbps up, 150 ms. */
export const SLOW_3G: Link = { downBps: 1_600_000, upBps: 750_000, rttMs: 150 };

/**
 * A TCP proxy in front of `port` that behaves like a slow link: every byte waits its turn on a line
 * of the given rate (shared by all connections, each way) and then half the round trip; a connection
 * opens after one round trip. Everything the browser fetches through it (the page, its service
 * worker's requests too) pays what a phone would. Chrome's own throttling reaches the page alone.
 */
export async function throttledProxy(port: number, link: Link): Promise<{ port: number; close: () => Promise<void> }> {
  const lines = { down: 0, up: 0 }; // when each direction's line is next free (ms, performance.now())
  const sockets = new Set<Socket>();
  const pipe = (from: Socket, to: Socket, dir: 'down' | 'up') => {
    const bps = dir === 'down' ? link.downBps : link.upBps;
    from.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i += 4096) {
        const piece = chunk.subarray(i, i + 4096);
        lines[dir] = Math.max(performance.now(), lines[dir]) + (piece.length * 8 * 1000) / bps;
        const at = lines[dir] + link.rttMs / 2;
        setTimeout(
          () => {
            if (!to.destroyed) to.write(piece);
          },
          Math.max(0, at - performance.now()),
        );
      }
    });
    from.on('end', () => setTimeout(() => to.end(), Math.max(0, lines[dir] + link.rttMs / 2 - performance.now())));
    from.on('error', () => to.destroy());
    from.on('close', () => sockets.delete(from));
  };
  const server = createServer((client) => {
    sockets.add(client);
    client.pause();
    setTimeout(() => {
      const upstream = connect(port, '127.0.0.1', () => {
        pipe(client, upstream, 'up');
        pipe(upstream, client, 'down');
        client.resume();
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
    }, link.rttMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
