import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/env.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { openDb } from '../store/db.ts';
import { KINDS } from './helpers/batch.ts';
import { cleanup, isolatedConfig } from './helpers/services.ts';

/** The `tuban` command line as a user runs it, with a separate worker process. */
describe('tuban CLI with a separate worker process', () => {
  const fixturesDir = inject('fixturesDir');
  let config: Config;
  let env: NodeJS.ProcessEnv;
  let worker: ChildProcess | undefined;
  const tuban = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/tuban.mjs', ...args], { env, encoding: 'utf8', timeout: 600_000 });

  beforeAll(() => {
    config = isolatedConfig();
    env = {
      ...process.env,
      DATABASE_URL: config.DATABASE_URL,
      TUBAN_DB_SCHEMA: config.TUBAN_DB_SCHEMA,
      TUBAN_MODEL_DIR: config.TUBAN_MODEL_DIR,
      TUBAN_QUEUE_PREFIX: config.TUBAN_QUEUE_PREFIX,
      TUBAN_DATA_DIR: config.dataDir,
      TUBAN_LOG_LEVEL: 'info',
    };
  });
  afterAll(async () => {
    worker?.kill('SIGKILL');
    await cleanup(await openDb(config), config);
  });

  it('migrates, imports layers and registers imagery', () => {
    expect(tuban('db', 'migrate').stdout).toMatch(/applied 001_schema\.sql/);
    for (const kind of KINDS) {
      const r = tuban('layers', 'import', join(fixturesDir, 'layers', `${kind}.geojson`), '--kind', kind);
      expect(r.status, r.stderr).toBe(0);
    }
    const bad = tuban('layers', 'import', join(fixturesDir, 'layers', 'town.geojson'), '--kind', 'castle');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/castle/);
    for (const month of ['2024-02', '2024-03']) {
      const r = tuban('imagery', 'register', '--month', month, join(fixturesDir, 'imagery', month));
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('4 image(s) registered, 0 refused');
    }
    const refused = tuban(
      'imagery',
      'register',
      '--month',
      '2024-03',
      join(fixturesDir, 'truth.geojson'),
      join(fixturesDir, 'nothing-here.tif'),
    );
    expect(refused.status).toBe(2);
    expect(refused.stdout).toMatch(/REFUSED .*nothing-here\.tif: \[file_missing\]/);
  });

  it('runs the batch on a worker in another process and lists patches per town', async () => {
    worker = spawn(process.execPath, ['bin/tuban.mjs', 'worker', '--concurrency', '1'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let workerLog = '';
    worker.stderr!.on('data', (d) => (workerLog += d));
    const run = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, ['bin/tuban.mjs', 'batch', 'run', '--month', '2024-03', '--wait', '--json'], {
        env,
      });
      let out = '',
        err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, out, err }));
    });
    expect(run.code, run.err).toBe(0);
    const summary = JSON.parse(run.out);
    expect(summary).toMatchObject({
      status: 'completed',
      month: '2024-03',
      tiles: { total: 4, ok: 4, failed: 0 },
      patches: { new: 5, redetected: 0 },
    });
    expect(workerLog).toContain('Part:Detected');

    const list = tuban('patches', 'list', '--month', '2024-03', '--town', '350206002', '--json');
    const rows = JSON.parse(list.stdout);
    expect(rows.map((r: { code: string }) => r.code)).toEqual(['350206-202403-0001', '350206-202403-0004']);
    expect(rows[1].farmland_m2).toBeGreaterThan(0);
    const text = tuban('patches', 'list', '--month', '2024-03');
    expect(text.stdout).toContain('殿前街道 350206001 — 3 patch(es)');
    // PDF sheets are drawn on a thread of their own: it must start from the compiled CLI as from the sources
    const pdf = join(config.dataDir, 'heshan.pdf');
    const sheets = tuban(
      'patches',
      'export',
      '--month',
      '2024-03',
      '--town',
      '350206002',
      '--format',
      'pdf',
      '-o',
      pdf,
    );
    expect(sheets.status, sheets.stderr).toBe(0);
    expect(readFileSync(pdf).subarray(0, 5).toString()).toBe('%PDF-');

    const stopped = new Promise<number | null>((resolve) => worker!.on('exit', (code) => resolve(code)));
    const t0 = Date.now();
    worker.kill('SIGTERM');
    expect(await stopped).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(workerLog).toContain('Worker:Stopped');
    worker = undefined;
  });

  it('moves many patches at once as a named user, and says which years the calendar covers', () => {
    expect(tuban('users', 'add', 'ana', '--role', 'analyst').status).toBe(0);
    const dry = tuban('patches', 'act', 'dispatch', '--as', 'ana', '--month', '2024-03', '--dry-run');
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry run: would move 5 of 5 patch\(es\) \(dispatch\)/);
    const two = tuban('patches', 'act', 'dispatch', '--as', 'ana', '--codes', '350206-202403-0001,350206-202403-9999');
    expect(two.status, two.stderr).toBe(0);
    expect(two.stdout).toMatch(/350206-202403-0001 detected → dispatched/);
    expect(two.stdout).toMatch(/350206-202403-9999 refused: patch 350206-202403-9999 not found/);
    const role = tuban('patches', 'act', 'close', '--as', 'ana', '--month', '2024-03');
    expect(role.status).not.toBe(0);
    expect(role.stderr).toMatch(/close/);
    const nobody = tuban('patches', 'act', 'dispatch', '--as', 'nobody', '--month', '2024-03');
    expect(nobody.status).toBe(2);
    expect(nobody.stderr).toMatch(/nobody does not exist/);

    const status = tuban('calendar', 'status');
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/calendar 2024–2026, holidays known until 2026-12-31/);
    mkdirSync(config.dataDir, { recursive: true });
    const bad = join(config.dataDir, 'year.json');
    writeFileSync(bad, JSON.stringify({ year: 2027, source: 'test', holidays: ['2026-12-31'] }));
    const refused = tuban('calendar', 'add', bad);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/year\.json: 2026-12-31 not in 2027/);
  });

  it('sets up a group robot from standard input, never printing its key, and lists the messages a move writes', () => {
    const add = spawnSync(
      process.execPath,
      ['bin/tuban.mjs', 'notify', 'add', '殿前街道工作群', '--kind', 'dingtalk', '--town', '350206001', '--stdin'],
      {
        env,
        encoding: 'utf8',
        timeout: 600_000,
        input: 'https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdefTOKEN7890\nSEC0123456789abcdef\n',
      },
    );
    expect(add.status, add.stderr).toBe(0);
    expect(add.stdout).toMatch(
      /channel 1 殿前街道工作群: dingtalk, 殿前街道, https:\/\/oapi\.dingtalk\.com\/robot\/send\?access_token=\*\*\*\*7890/,
    );
    const list = tuban('notify', 'list');
    expect(list.stdout).toContain('(signed)');
    expect(list.stdout + add.stdout).not.toMatch(/TOKEN7890|SEC0123/);
    const bad = tuban('notify', 'add', 'x', '--kind', 'wecom', '--webhook', 'http://10.1.1.1/hook');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/https/);
    expect(tuban('patches', 'act', 'dispatch', '--as', 'ana', '--month', '2024-03').status).toBe(0);
    const out = tuban('notify', 'outbox');
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/殿前街道工作群\tdispatched\t3 patch\(es\)\tpending\t0 tries/);
  });

  it('serves the web app built at install, and the API, until SIGTERM', async () => {
    const serve = spawn(process.execPath, ['bin/tuban.mjs', 'serve', '--port', '0', '--host', '127.0.0.1'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      let log = '';
      const address = await new Promise<string>((resolve, reject) => {
        serve.stderr!.on('data', (d: Buffer) => {
          log += d;
          const m = /"event":"Server:Listening".*?"address":"([^"]+)"/.exec(log);
          if (m) resolve(m[1]);
        });
        serve.once('exit', (code) => reject(new Error(`tuban serve exited with ${code}: ${log}`)));
      });
      const page = await fetch(`${address}/`);
      expect(page.status).toBe(200);
      const script = /\/assets\/app\.[0-9a-f]{12}\.js/.exec(await page.text())?.[0];
      expect(script).toBeDefined(); // the bundle under its content's hash
      const js = await fetch(`${address}${script}`);
      expect(js.status).toBe(200);
      expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(100_000); // OpenLayers is in the bundle
      expect((await (await fetch(`${address}/api/health`)).json()).ok).toBe(true);
    } finally {
      const exited = new Promise((r) => serve.once('exit', r));
      serve.kill('SIGTERM');
      await exited;
    }
  });

  it('shows an unfinished batch scene by scene, with its part jobs as BullMQ holds them', () => {
    // no worker runs now: the batch stays queued with its jobs waiting
    const launched = tuban('batch', 'run', '--month', '2024-03');
    expect(launched.status, launched.stderr).toBe(0);
    const status = tuban('batch', 'status', '--month', '2024-03');
    expect(status.status, status.stderr).toBe(0);
    const lines = status.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^batch \d+ 2024-03 \(baseline 2024-02\) — queued: 0\/4 scenes done, 0 failed; diff job waiting-children$/,
    );
    expect(lines.slice(1).map((l) => l.replace(/^ +\S+\/(r\dc\d\.tif):/, '$1:'))).toEqual(
      ['r0c0.tif', 'r0c1.tif', 'r1c0.tif', 'r1c1.tif'].map((f) => `${f}: queued, parts 0/1; part jobs waiting`),
    );
  });

  it('detects one pair without database or queue, then vectorizes the probability raster', async () => {
    const before = join(fixturesDir, 'imagery', '2024-02', 'r1c0.tif');
    const after = join(fixturesDir, 'imagery', '2024-03', 'r1c0.tif');
    const prob = join(config.dataDir, 'prob.tif');
    const d = tuban('detect', before, after, '-o', prob);
    expect(d.status, d.stderr).toBe(0);
    const src = await GeoTiffSource.open(prob);
    const ref = await GeoTiffSource.open(after);
    expect(src.info).toMatchObject({
      widthPx: 1024,
      heightPx: 1024,
      bandCount: 1,
      sampleType: 'float32',
      crs: { epsg: 4548 },
      geoTransform: ref.info.geoTransform,
    });
    await src.close();
    await ref.close();
    const out = join(config.dataDir, 'changes.geojson');
    const v = tuban('vectorize', prob, '-o', out, '--min-area-m2', '50', '--simplify-m', '0.5');
    expect(v.status, v.stderr).toBe(0);
    const fc = JSON.parse(readFileSync(out, 'utf8'));
    expect(fc.crs.properties.name).toBe('urn:ogc:def:crs:EPSG::4548');
    // r1c0 holds the ecological-zone building and the west half of the seam building.
    expect(fc.features.length).toBe(2);
    for (const f of fc.features) expect(f.properties.area_m2).toBeGreaterThan(50);
  });
});

/**
 * The README's exit codes, from real processes: 2 for bad input (options, environment, a refused
 * login), 3 when a service does not answer, with one line saying why and no stack trace.
 */
describe('tuban exit codes', () => {
  const run = (env: Record<string, string>, ...args: string[]) => {
    const r = spawnSync(process.execPath, ['bin/tuban.mjs', ...args], {
      env: { ...process.env, TUBAN_LOG_LEVEL: 'warn', ...env },
      encoding: 'utf8',
      timeout: 600_000,
    });
    return { status: r.status, stderr: r.stderr };
  };
  const db = {
    DATABASE_URL:
      process.env.TUBAN_TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  };
  const cases: [string, Record<string, string>, string[], number, RegExp][] = [
    ['a missing required option', {}, ['eval'], 2, /required option '--dataset <dir>' not specified/],
    ['an unknown command', {}, ['nosuch'], 2, /unknown command 'nosuch'/],
    [
      'a bad environment',
      { TUBAN_PORT: 'abc' },
      ['db', 'migrate'],
      2,
      /invalid configuration in the environment:\s+TUBAN_PORT/,
    ],
    [
      'PostgreSQL not answering',
      { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' },
      ['db', 'migrate'],
      3,
      /PostgreSQL does not answer at postgres:\/\/127\.0\.0\.1:1\/test/,
    ],
    [
      'PostgreSQL refusing the role',
      { DATABASE_URL: db.DATABASE_URL.replace(/\/\/[^@/]*@/, '//no_such_role_tuban@') },
      ['db', 'migrate'],
      2,
      /refused: role "no_such_role_tuban" does not exist/,
    ],
    [
      'a database never migrated',
      { ...db, TUBAN_DB_SCHEMA: 'tuban_never_migrated' },
      ['patches', 'list', '--month', '2024-03'],
      2,
      /this database has no tuban tables \(relation "\w+" does not exist\): run `tuban db migrate` first/,
    ],
    [
      'Redis not answering',
      { ...db, REDIS_URL: 'redis://127.0.0.1:1' },
      ['worker'],
      3,
      /Redis does not answer at redis:\/\/127\.0\.0\.1:1/,
    ],
  ];
  for (const [what, env, args, code, message] of cases) {
    it(`${what}: exit ${code}, the reason in one line`, () => {
      const r = run(env, ...args);
      expect(r.status, r.stderr).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    });
  }
  it('--help is not an error', () => {
    expect(run({}, '--help').status).toBe(0);
  });
});
