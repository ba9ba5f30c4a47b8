import { describe, expect, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { createLogger } from '../core/log.ts';
import { openDb } from '../store/db.ts';
import { hostileServer, JPEG, OWN } from './helpers/hostile.ts';

/** The security review's findings (issue 17) on slow or malformed requests, errors and response headers, replayed against tuban serve on real PostGIS. */
describe('security: hostile requests, errors and headers', () => {
  const h = hostileServer();
  const { call, env, token, logged } = h;

  it('a request that hangs is answered 503 at the time limit, and the server statements end too', async () => {
    const limited = await buildServer({
      db: h.run.db,
      config: { ...h.run.config, TUBAN_HTTP_TIMEOUT_S: 1 },
      env,
      log: createLogger('error', () => {}),
    });
    limited.get('/api/test-hang', async () => new Promise(() => {}));
    try {
      const t0 = Date.now();
      const r = await limited.inject({
        method: 'GET',
        url: '/api/test-hang',
        headers: { authorization: `Bearer ${token.ana}` },
      });
      expect(r.statusCode).toBe(503);
      expect(r.json().message).toMatch(/请求超过 1 秒未完成/);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect((await limited.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
    const db = await openDb(h.run.config, { statementTimeoutMs: 300 });
    try {
      await expect(db.raw('select pg_sleep(3)')).rejects.toThrow(/statement timeout/);
    } finally {
      await db.destroy();
    }
  });

  it('low findings: malformed input is a 400 naming the field, never a 500', async () => {
    const bad: [string, RegExp][] = [
      ['/api/patches?offset=2147483648', /offset/],
      ['/api/patches?bbox=1.2.3,4,5,6', /bbox/],
      ['/api/patches?bbox=118,24,117,25', /bbox/],
      ['/api/patches?town=%00', /town/],
      ['/api/patches?town=350206001%0D%0AX-Injected:1', /town/],
      ['/api/patches?status=detected%00', /status/],
      ['/api/evidence/1e300', /evidence id/],
      ['/api/evidence/-1', /evidence id/],
      ['/api/batches/99999999999999999999', /batch id/],
    ];
    for (const [url, field] of bad) {
      const r = await call('ana', 'GET', url);
      expect(r.statusCode, url).toBe(400);
      expect(r.json().message, url).toMatch(field);
    }
    expect((await call('ana', 'GET', '/api/patches?offset=10&bbox=118,24,119,25')).statusCode).toBe(200);
    // a bow-tie drawn over a patch is made valid (the second part, far away, then refuses the split: nothing changes)
    const code = '350206-202403-0004';
    const g = (await call('ana', 'GET', `/api/patches/${code}`)).json().geometry;
    const ring = (g.type === 'MultiPolygon' ? g.coordinates[0][0] : g.coordinates[0]) as number[][];
    const [x0, x1, y0, y1] = [
      Math.min(...ring.map((c) => c[0])),
      Math.max(...ring.map((c) => c[0])),
      Math.min(...ring.map((c) => c[1])),
      Math.max(...ring.map((c) => c[1])),
    ];
    const bowTie = {
      type: 'Polygon',
      coordinates: [
        [
          [x0, y0],
          [x1, y1],
          [x1, y0],
          [x0, y1],
          [x0, y0],
        ],
      ],
    };
    const faraway = {
      type: 'Polygon',
      coordinates: [
        [
          [100, 10],
          [100.001, 10],
          [100.001, 10.001],
          [100, 10],
        ],
      ],
    };
    const split = await call('ana', 'POST', `/api/patches/${code}/actions/split`, {
      parts: [bowTie, faraway],
      reason: '两栋',
    });
    expect(split.statusCode, split.body).toBe(400);
    expect(split.json().message).toMatch(/part 2 does not cover/);
    const open = {
      type: 'Polygon',
      coordinates: [
        [
          [x0, y0],
          [x1, y0],
          [x1, y1],
          [x0, y1],
        ],
      ],
    };
    const unclosed = await call('ana', 'POST', `/api/patches/${code}/actions/split`, {
      parts: [open, bowTie],
      reason: '两栋',
    });
    expect(unclosed.statusCode).toBe(400);
    expect(unclosed.json().message).toMatch(/parts\.0\.coordinates\.0: a ring ends where it starts/);
    expect((await call('ana', 'GET', `/api/patches/${code}`)).json().status).toBe('detected');
  });

  it('round three (Medium, Low): a NUL or half a UTF-16 pair anywhere is a 400 naming the field, and every refusal is audited', async () => {
    const before = Number((await h.run.db('audit_event').count('* as n'))[0].n);
    const refusals: [string, 'GET' | 'POST', string, unknown, RegExp][] = [
      ['ana', 'GET', '/api/patches/%00', undefined, /code/],
      ['ana', 'GET', '/api/patches?month=2024-03&town=%F0%9F%98%80%00', undefined, /town/],
      [null as never, 'POST', '/api/login', { username: 'ana\u0000', password: 'analyst-pass' }, /body\.username/],
      ['dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: 'a\u0000b' }, /body\.text.*\\u0000/],
      ['dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: '屋顶\ud800加层' }, /body\.text.*UTF-16/],
      ['ana', 'POST', `/api/patches/${OWN}/actions/dismiss`, { reason: 'other', note: 'x\udc00' }, /body\.note/],
      ['ana', 'POST', '/api/users', { username: 'eve', role: 'admin', display_name: '\u0000' }, /body\.display_name/],
      ['dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=a%00.jpg`, JPEG, /query\.filename/],
      ['ana', 'POST', '/api/patches/actions/dispatch', { select: { codes: ['x\u0000'] } }, /body\.select\.codes\[0\]/],
      ['ana', 'POST', `/api/patches/${OWN}/notes`, { ['k\u0000']: 1 }, /body\.k\\u0000/],
    ];
    for (const [who, method, url, body, field] of refusals) {
      const r = await call(who, method, url, body, Buffer.isBuffer(body) ? { 'content-type': 'image/jpeg' } : {});
      expect(r.statusCode, url).toBe(400);
      expect(r.json().message, url).toMatch(field);
    }
    // every refused change has its audit row, the NUL shown as text
    // (a refusal's row is written after its answer: wait for the last)
    const audited = () =>
      h.run.db('audit_event').orderBy('id').offset(before).select('path', 'status', 'username', 'detail');
    await expect.poll(async () => (await audited()).length, { timeout: 10_000 }).toBe(8);
    const rows = await audited();
    expect(rows.map((r) => r.status)).toEqual(Array(8).fill(400));
    expect(rows.find((r) => r.path === '/api/login')!.username).toBe('ana\\u0000');
    expect(JSON.stringify(rows)).toContain('a\\\\u0000b');
    expect(h.logged.filter((l) => l.event === 'Audit:WriteFailed')).toEqual([]);
    // (Info) a display name is bounded
    const long = await call('root', 'POST', '/api/users', {
      username: 'longname',
      role: 'analyst',
      display_name: '名'.repeat(5000),
    });
    expect(long.statusCode).toBe(400);
    expect(long.json().message).toMatch(/display name: at most 100/);
  });

  it('round three (Low): a body is as small as its route needs, and a refused slow body does not keep its socket', async () => {
    // 1 MB of JSON to a note: refused by size, not read whole
    const big = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: 'x'.repeat(1 << 20) });
    expect(big.statusCode).toBe(413);
    expect(big.json().message).toBe('the request is too large: at most 16 KB');
    // the photo route still takes a photo up to the evidence limit
    const photo = await call('dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=site.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(photo.statusCode, photo.body).toBe(201);
    // no token, a body announced as 10 MB and trickled: answered 401 and the socket closed, not held open
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = new URL(address);
      const { connect } = await import('node:net');
      const socket = connect(Number(port), '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      const closed = new Promise<number>((resolve) => {
        const t0 = Date.now();
        socket.on('close', () => resolve(Date.now() - t0));
      });
      socket.write(
        `POST /api/patches/${OWN}/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"text":"`,
      );
      const trickle = setInterval(() => socket.writable && socket.write('x'), 100);
      const ms = await closed;
      clearInterval(trickle);
      expect(answer).toMatch(/^HTTP\/1\.1 401/);
      expect(answer.toLowerCase()).toContain('connection: close');
      expect(ms).toBeLessThan(5000);
    } finally {
      await new Promise<void>((resolve) => h.app.server.close(() => resolve()));
    }
  });

  it('low findings: a 500 is logged with a request id the error body shows', async () => {
    const r = await call('ana', 'GET', '/api/test-crash');
    expect(r.statusCode).toBe(500);
    const id = r.json().request_id;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.json().message).toContain(id);
    expect(r.json().message).not.toMatch(/a bug/);
    expect(logged.find((l) => l.requestId === id)).toMatchObject({
      level: 'error',
      event: 'Http:InternalError',
      error: 'a bug',
      path: '/api/test-crash',
      user: 'ana',
    });
  });

  it('low findings: logins take a few KB, every response says nosniff and no framing, the web app gets a CSP', async () => {
    const big = await call(null, 'POST', '/api/login', { username: 'ana', password: 'x'.repeat(20 * 1024) });
    expect(big.statusCode).toBe(413);
    for (const url of ['/api/health', '/api/patches']) {
      const r = await call('ana', 'GET', url);
      expect(r.headers['x-content-type-options'], url).toBe('nosniff');
      expect(r.headers['content-security-policy'], url).toMatch(/frame-ancestors 'none'/);
      expect(r.headers['x-frame-options'], url).toBe('DENY');
    }
  });
});
