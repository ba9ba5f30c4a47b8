import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadManifest } from '../pipeline/io/model.manifest.ts';
import { registerImagery } from '../imagery/register.ts';
import { launchBatch, waitForBatch } from '../workers/batch.launch.ts';
import { loadFixtureLayers, runBatch } from './helpers/batch.ts';
import { WorkerProc, sleep } from './helpers/procs.ts';
import { LocalS3, uploadFolder, withEnv } from './helpers/remote.ts';
import { freePort } from './helpers/servers.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';
import { patchSnapshot } from './helpers/snapshot.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../store/db.ts';

/**
 * Several hosts on one machine: three `tuban worker` processes, each in a network namespace of
 * its own with a data folder of its own, reach PostgreSQL, Redis and an S3 server only over a
 * private /24 that this test makes (a bridge on the host side, a veth pair per namespace). The
 * month's imagery is read from s3:// over that network. One host's worker is killed mid-batch;
 * the batch must end with every part done once, parts done on all three hosts, and the same
 * patches as a run on one host. Needs root (ip netns); elsewhere it skips and says why.
 */
const id = randomBytes(3).toString('hex');
const net = `10.${200 + (parseInt(id.slice(0, 2), 16) % 50)}.${parseInt(id.slice(2, 4), 16) % 250}`;
const HOST_IP = `${net}.1`;
const HOSTS = [1, 2, 3].map((k) => ({ ns: `tuban-${id}-h${k}`, ip: `${net}.${10 + k}`, link: `tv${id}h${k}` }));
const BRIDGE = `tbr${id}`;
const BUCKET = 'month';
/** Parts of 512² (16 for the fixture month), held 800 ms each in detect so the kill lands mid-batch; fast stall recovery. */
const SETTINGS = {
  TUBAN_PART_PX: '512',
  TUBAN_LOCK_MS: '3000',
  TUBAN_STALLED_INTERVAL_MS: '1000',
  TUBAN_REMOTE_TIMEOUT_MS: '5000',
};

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
const inNs = (ns: string, ...args: string[]) => ip('netns', 'exec', ns, 'ip', ...args);

/** Why namespaces cannot be made here, or null when they can. */
function namespacesRefused(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  const probe = `tuban-probe-${id}`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return null;
  } catch (err) {
    return `ip netns add failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
}

/** A TCP forwarder on the host side of the private network to a service the host reaches (`url`'s host and port). */
async function forward(
  url: string,
  defaultPort: number,
): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const to = new URL(url);
  const toPort = Number(to.port || defaultPort),
    toHost = to.hostname || '127.0.0.1';
  const port = await freePort();
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const out = connect(toPort, toHost);
    for (const s of [inbound, out]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        inbound.destroy();
        out.destroy();
      });
    }
    inbound.pipe(out).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(port, HOST_IP, resolve));
  return { port, server, sockets };
}

const refused = namespacesRefused();
if (refused) console.warn(`skipping the several-hosts test: ${refused}`);

describe.skipIf(refused !== null)('workers on three hosts (network namespaces)', () => {
  const fixturesDir = inject('fixturesDir');
  const s3 = new LocalS3([BUCKET], HOST_IP);
  const forwards: Awaited<ReturnType<typeof forward>>[] = [];
  const dataDirs: string[] = [];
  const procs: WorkerProc[] = [];
  const runs: { config: Config; db: Db }[] = [];
  let s3env: Record<string, string>;

  beforeAll(async () => {
    ip('link', 'add', BRIDGE, 'type', 'bridge');
    ip('addr', 'add', `${HOST_IP}/24`, 'dev', BRIDGE);
    ip('link', 'set', BRIDGE, 'up');
    for (const h of HOSTS) {
      ip('netns', 'add', h.ns);
      ip('link', 'add', h.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
      ip('link', 'set', h.link, 'master', BRIDGE, 'up');
      inNs(h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
      inNs(h.ns, 'link', 'set', 'eth0', 'up');
      inNs(h.ns, 'link', 'set', 'lo', 'up');
    }
    await s3.start();
    for (const month of ['2024-02', '2024-03'])
      await uploadFolder(s3, BUCKET, month, join(fixturesDir, 'imagery', month));
    s3env = s3.env;
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const f of forwards) {
      for (const s of f.sockets) s.destroy();
      f.server.close();
    }
    await s3.stop();
    for (const h of HOSTS) {
      try {
        ip('netns', 'del', h.ns);
      } catch {
        /* not made */
      }
    }
    try {
      ip('link', 'del', BRIDGE);
    } catch {
      /* not made */
    }
    for (const r of runs) await cleanup(r.db, r.config);
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  });

  /** A schema with the fixture layers and both months registered from s3:// (over the private network). */
  async function monthFromS3(overrides: Record<string, string>) {
    const config = isolatedConfig(overrides);
    const db = await migratedDb(config);
    runs.push({ config, db });
    await loadFixtureLayers(db, fixturesDir);
    await withEnv(s3env, async () => {
      for (const month of ['2024-02', '2024-03']) {
        const r = await registerImagery(db, config, month, [`s3://${BUCKET}/${month}/`]);
        expect(r.refused).toEqual([]);
        expect(r.registered).toHaveLength(4);
      }
    });
    return { config, db };
  }

  it('spreads a month over three hosts, survives one being killed, and matches a one-host run', async () => {
    // the one-host reference: the same month and settings, workers in this process
    const ref = await monthFromS3(SETTINGS);
    const reference = await withEnv(s3env, async () => {
      const s = await runBatch(ref.db, ref.config, '2024-03', '2024-02');
      expect(s.status).toBe('completed');
      return patchSnapshot(ref.db);
    });
    expect(reference.length).toBe(5);

    const run = await monthFromS3({ ...SETTINGS, TUBAN_FAULT_PAUSE: 'detect:800' });
    const pg = await forward(run.config.DATABASE_URL!, 5432);
    const redis = await forward(run.config.REDIS_URL, 6379);
    forwards.push(pg, redis);
    const db = new URL(run.config.DATABASE_URL!);
    db.hostname = HOST_IP;
    db.port = String(pg.port);
    const workers = HOSTS.map((h) => {
      const dataDir = mkdtempSync(join(tmpdir(), `tuban-${h.ns}-`));
      dataDirs.push(dataDir);
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...SETTINGS,
        ...s3env,
        TUBAN_FAULT_PAUSE: 'detect:800',
        DATABASE_URL: db.toString(),
        REDIS_URL: `redis://${HOST_IP}:${redis.port}`,
        TUBAN_DB_SCHEMA: run.config.TUBAN_DB_SCHEMA,
        TUBAN_QUEUE_PREFIX: run.config.TUBAN_QUEUE_PREFIX,
        TUBAN_MODEL_DIR: run.config.TUBAN_MODEL_DIR,
        TUBAN_DATA_DIR: dataDir,
      };
      const w = new WorkerProc(env, 1, ['ip', 'netns', 'exec', h.ns]);
      procs.push(w);
      return w;
    });
    await Promise.all(workers.map((w) => w.next((e) => e.event === 'Worker:Started', 120_000)));

    const manifest = loadManifest(run.config.TUBAN_MODEL_DIR).manifest;
    const { batch } = await launchBatch(run.db, run.config, manifest, '2024-03', '2024-02');
    const [victim] = workers;
    // killed while it holds its second part (in detect), with parts still queued
    await victim.next(
      (e) =>
        e.event === 'Part:DetectStarted' && victim.events.filter((x) => x.event === 'Part:DetectStarted').length >= 2,
      120_000,
    );
    await sleep(300);
    victim.kill('SIGKILL');
    await victim.exited();
    const { rows: left } = await run.db.raw(
      `select count(*)::int as n from batch_part where batch_id = ? and status = 'queued'`,
      [batch.id],
    );
    expect(left[0].n, 'parts still queued when the host was killed').toBeGreaterThan(0);

    const done = await waitForBatch(run.db, batch.id, () => {}, { timeoutMs: 240_000 });
    expect(done.status).toBe('completed');

    // every part done exactly once: all vectorized, and the stored polygons are each part's own count, none twice
    const { rows: parts } = await run.db.raw(
      `select p.status, p.polygons, (select count(*)::int from change_polygon c
         where c.batch_id = p.batch_id and c.imagery_id = p.imagery_id and c.part = p.part) as stored
       from batch_part p where p.batch_id = ?`,
      [batch.id],
    );
    expect(parts).toHaveLength(16);
    for (const p of parts) {
      expect(p.status).toBe('vectorized');
      expect(p.stored).toBe(p.polygons);
    }
    const { rows: dup } = await run.db.raw(
      `select count(*)::int as n from (select imagery_id, part, seq from change_polygon where batch_id = ? group by 1, 2, 3 having count(*) > 1) d`,
      [batch.id],
    );
    expect(dup[0].n).toBe(0);

    // the parts each host finished (from its own log), the killed one included
    const perHost = workers.map((w) => w.events.filter((e) => e.event === 'Part:Vectorized').length);
    console.log(
      `parts per host (${HOSTS.map((h) => h.ip).join(', ')}; the first killed mid-batch): ${perHost.join(', ')}`,
    );
    for (const n of perHost) expect(n).toBeGreaterThan(0);
    expect(perHost.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(16);

    expect(await patchSnapshot(run.db)).toEqual(reference);
  });
});
