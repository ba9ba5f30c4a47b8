import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import sharp from 'sharp';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/env.ts';
import { dropBlockCache, remoteTotals } from '../pipeline/io/byte.source.ts';
import { GeoTiffCache, GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { addEvidence, readEvidence } from '../store/evidence.ts';
import { renderMapTile, TILE_GRID } from '../map/tiles.ts';
import { exportPatchesTo } from '../export/patches.ts';
import { objectStore, readObject } from '../store/objects.ts';
import { workflowEnv } from '../workflow/env.ts';
import { createUser } from '../store/users.ts';
import { JPEG } from './helpers/hostile.ts';
import type { Db } from '../store/db.ts';
import { registerImagery } from '../imagery/register.ts';
import { copyMonth, loadFixtureLayers, registerFixtureMonths, runBatch } from './helpers/batch.ts';
import { LocalS3, StallingProxy, StaticNginx, nginxBinary, uploadFolder, withEnv } from './helpers/remote.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';

/**
 * Imagery read from object storage and plain HTTP: a month registered from an S3 prefix on a real
 * S3-compatible server (s3rver) and a month of URLs served by Debian's nginx, each run through
 * the whole batch on the real PostgreSQL and Redis.
 */
const fixturesDir = inject('fixturesDir');
const BUCKET = 'imagery';
const S3_ENV = {
  TUBAN_S3_ACCESS_KEY_ID: LocalS3.accessKeyId,
  TUBAN_S3_SECRET_ACCESS_KEY: LocalS3.secretAccessKey,
  TUBAN_REMOTE_TIMEOUT_MS: '1500',
  TUBAN_REMOTE_RETRIES: '1',
};

async function fresh(overrides: Record<string, string> = {}): Promise<{ config: Config; db: Db }> {
  const config = isolatedConfig(overrides);
  const db = await migratedDb(config);
  await loadFixtureLayers(db, fixturesDir);
  return { config, db };
}

const patchRows = (db: Db) =>
  db
    .raw(`select code, round(area_m2::numeric, 1)::float8 as area_m2, town_code from patch order by code`)
    .then((r) => r.rows);

describe('imagery from an S3-compatible store', () => {
  const s3 = new LocalS3([BUCKET]);
  let env: Record<string, string>;
  beforeAll(async () => {
    await s3.start();
    for (const month of ['2024-02', '2024-03'])
      await uploadFolder(s3, BUCKET, `city/${month}`, join(fixturesDir, 'imagery', month));
    env = { ...S3_ENV, ...s3.env };
  });
  afterAll(() => s3.stop());

  it('registers months from s3:// prefixes and runs the whole batch with the same patches as from local files', async () => {
    // parts of 512 px: four to a fixture tile, each read with a margin of its neighbours' pixels
    const local = await fresh({ TUBAN_PART_PX: '512' });
    const remote = await fresh({ TUBAN_PART_PX: '512' });
    try {
      await registerFixtureMonths(local.db, local.config, fixturesDir);
      await runBatch(local.db, local.config, '2024-03');
      const expected = await patchRows(local.db);
      expect(expected.length).toBe(5);

      const bytesOf = (m: string) =>
        readdirSync(join(fixturesDir, 'imagery', m)).reduce(
          (a, f) => a + statSync(join(fixturesDir, 'imagery', m, f)).size,
          0,
        );
      await withEnv(env, async () => {
        for (const [month, date] of [
          ['2024-02', '2024-02-10'],
          ['2024-03', '2024-03-15'],
        ]) {
          const r = await registerImagery(remote.db, remote.config, month, [`s3://${BUCKET}/city/${month}/`], date);
          expect(r.refused).toEqual([]);
          expect(r.registered.map((i) => i.path)).toEqual(
            readdirSync(join(fixturesDir, 'imagery', month))
              .sort()
              .map((f) => `s3://${BUCKET}/city/${month}/${f}`),
          );
        }
        dropBlockCache(); // registration read every block: the batch reads as a fresh worker would
        const before = { ...remoteTotals };
        const s = await runBatch(remote.db, remote.config, '2024-03');
        expect(s.status).toBe('completed');
        expect(s.tiles).toEqual({ total: 4, ok: 4, failed: 0 });
        const requests = remoteTotals.requests - before.requests,
          bytes = remoteTotals.bytes - before.bytes,
          cached = remoteTotals.cachedBytes - before.cachedBytes;
        const [{ parts, mpx }] = (
          await remote.db.raw(
            `select count(*)::int as parts, sum(p.width * p.height)::float8 / 1e6 as mpx from batch_part p where p.batch_id = ?`,
            [s.batchId],
          )
        ).rows;
        const filesBytes = bytesOf('2024-02') + bytesOf('2024-03');
        console.log(
          `batch from s3://: ${parts} parts, ${requests} requests (${(requests / parts).toFixed(1)} per part), ` +
            `${(bytes / 1e6).toFixed(2)} MB read for ${mpx.toFixed(1)} Mpx (${(bytes / 1e6 / mpx).toFixed(3)} MB/Mpx; both months' files ${(filesBytes / 1e6).toFixed(2)} MB), ` +
            `${(cached / 1e6).toFixed(2)} MB from the block cache`,
        );
        // the fixture tiles are one strip each, which every part of a tile needs: each strip is fetched
        // once and the tile's other parts take it from the block cache (without it: 4 times the bytes;
        // on top, each part reads the first 64 KiB of both files for their headers);
        // a few requests per part (header, offset tables, coalesced runs of blocks), not one per block
        expect(parts).toBe(16);
        expect(bytes).toBeLessThan(1.15 * filesBytes);
        expect(cached).toBeGreaterThan(2 * filesBytes);
        expect(requests / parts).toBeLessThan(30);
      });
      expect(await patchRows(remote.db)).toEqual(expected);
      const sources = await remote.db('patch').select('source_tiles');
      for (const r of sources) for (const t of r.source_tiles) expect(t).toMatch(/^s3:\/\/imagery\/city\/2024-03\//);
    } finally {
      await cleanup(local.db, local.config);
      await cleanup(remote.db, remote.config);
    }
  });

  it('keeps evidence and imagery previews in the store TUBAN_STORAGE_URL names, for any host to read', async () => {
    await withEnv(env, async () => {
      const config = isolatedConfig({ TUBAN_STORAGE_URL: `s3://${BUCKET}/tuban-store` });
      const db = await migratedDb(config);
      try {
        await loadFixtureLayers(db, fixturesDir);
        await registerFixtureMonths(db, config, fixturesDir);
        const previews: string[] = (await db('imagery').select('preview_path')).map((r) => r.preview_path);
        expect(previews).toHaveLength(8);
        for (const p of previews)
          expect(p).toMatch(/^s3:\/\/imagery\/tuban-store\/previews\/2024-0[23]\/[0-9a-f]{20}-[0-9a-f]{12}\.tif$/);
        expect(existsSync(join(config.dataDir, 'previews'))).toBe(false);
        // the map's coarse levels draw them from the store
        const [{ x, y }] = (
          await db.raw(
            `select ST_X(ST_Centroid(footprint)) x, ST_Y(ST_Centroid(footprint)) y from imagery where month = '2024-03' limit 1`,
          )
        ).rows;
        const sizeM = TILE_GRID.tileSizePx * TILE_GRID.resolutions[0];
        const tile = await renderMapTile(
          db,
          new GeoTiffCache(),
          config.TUBAN_STORAGE_SRID,
          '2024-03',
          0,
          Math.floor((x - TILE_GRID.origin[0]) / sizeM),
          Math.floor((TILE_GRID.origin[1] - y) / sizeM),
        );
        expect(tile).not.toBeNull();
        const { data } = await sharp(tile!).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
        expect(data.some((v, i) => i % 4 === 3 && v > 0)).toBe(true);

        await runBatch(db, config, '2024-03');
        const clerk = await createUser(db, { username: 'dq', role: 'town', townCode: '350206001' });
        const [patch] = await db('patch').where({ town_code: '350206001' }).select('code').orderBy('code');
        const added = await addEvidence(db, objectStore(config), 1 << 20, clerk, patch.code, {
          filename: 'site.jpg',
          bytes: JPEG,
        });
        const [row] = await db('evidence').where({ id: added.id }).select('stored_as');
        expect(row.stored_as).toBe(
          `s3://${BUCKET}/tuban-store/evidence/${added.sha256.slice(0, 2)}/${added.sha256}.jpg`,
        );
        expect(existsSync(join(config.dataDir, 'evidence'))).toBe(false);
        expect((await readEvidence(db, clerk, added.id)).bytes.equals(JPEG)).toBe(true);

        // the month's list exported to the store, for the town offices to fetch
        const geojson = await exportPatchesTo(db, workflowEnv(config), {
          month: '2024-03',
          format: 'geojson',
          outPath: `s3://${BUCKET}/exports/2024-03.geojson`,
          storageSrid: config.TUBAN_STORAGE_SRID,
        });
        expect(geojson).toEqual({ files: [`s3://${BUCKET}/exports/2024-03.geojson`], count: 5 });
        const back = JSON.parse((await readObject(geojson.files[0])).toString('utf8'));
        expect(back.features).toHaveLength(5);
        const shp = await exportPatchesTo(db, workflowEnv(config), {
          month: '2024-03',
          format: 'shp',
          outPath: `s3://${BUCKET}/exports/2024-03-shp/`,
          storageSrid: config.TUBAN_STORAGE_SRID,
        });
        expect(new Set(shp.files.map((f) => f.split('.').pop()))).toEqual(new Set(['cpg', 'dbf', 'prj', 'shp', 'shx']));
        for (const f of shp.files) expect(f.startsWith(`s3://${BUCKET}/exports/2024-03-shp/`)).toBe(true);
      } finally {
        await cleanup(db, config);
      }
    });
  });

  it('refuses a prefix whose credentials the store refuses, naming it and the reason', async () => {
    const { config, db } = await fresh();
    const refusedKey = { ...env, TUBAN_S3_ACCESS_KEY_ID: 'NOT-A-KEY' }; // s3rver checks key ids, not v4 signatures
    try {
      const r = await withEnv(refusedKey, () =>
        registerImagery(db, config, '2024-03', [`s3://${BUCKET}/city/2024-03/`]),
      );
      expect(r.registered).toEqual([]);
      expect(r.refused).toHaveLength(1);
      expect(r.refused[0]).toMatchObject({ path: `s3://${BUCKET}/city/2024-03/`, code: 'access_refused' });
      expect(r.refused[0].reason).toContain('TUBAN_S3_ACCESS_KEY_ID');
      const one = await withEnv(refusedKey, () =>
        registerImagery(db, config, '2024-03', [
          `s3://${BUCKET}/city/2024-03/${readdirSync(join(fixturesDir, 'imagery', '2024-03'))[0]}`,
        ]),
      );
      expect(one.refused[0].code).toBe('access_refused');
      const missing = await withEnv(env, () =>
        registerImagery(db, config, '2024-03', [`s3://${BUCKET}/city/2024-03/nope.tif`]),
      );
      expect(missing.refused[0]).toMatchObject({ code: 'file_missing' });
      expect(missing.refused[0].reason).toContain(`s3://${BUCKET}/city/2024-03/nope.tif`);
    } finally {
      await cleanup(db, config);
    }
  });
});

describe('a scene pinned at registration', () => {
  it('opens a local file only while it has the size registration saw', async () => {
    const dir = join(fixturesDir, 'imagery', '2024-03');
    const file = join(dir, readdirSync(dir).sort()[0]);
    const bytes = statSync(file).size;
    const src = await GeoTiffSource.open(file, { expect: { bytes, etag: null } });
    await src.close();
    const opening = GeoTiffSource.open(file, { expect: { bytes: bytes + 1, etag: null } });
    await expect(opening).rejects.toMatchObject({ code: 'changed_since_registration' });
    await expect(opening).rejects.toThrow(
      `${file}: changed since it was registered (${bytes} bytes now, ${bytes + 1} then); register the month again to use the new file`,
    );
  });
});

const nginx = nginxBinary();
describe.skipIf(!nginx)('imagery over HTTP from nginx', () => {
  let server: StaticNginx;
  let proxy: StallingProxy;
  let root: string;
  let ctx: { config: Config; db: Db };
  beforeAll(async () => {
    ctx = await fresh();
    root = join(ctx.config.dataDir, 'www');
    copyMonth(fixturesDir, '2024-03', join(root, '2024-03'));
    server = new StaticNginx(nginx!, root);
    await server.start();
    proxy = new StallingProxy(server.url);
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
    await cleanup(ctx.db, ctx.config);
  });

  it('refuses a server that ignores Range requests, rather than read the wrong bytes', async () => {
    const file = join(root, '2024-03', readdirSync(join(root, '2024-03')).sort()[0]);
    const bytes = readFileSync(file);
    // answers every GET with the whole file (200), as a server without Range support does
    const plain = createServer((req, res) => {
      res.writeHead(200, { 'content-length': bytes.length, etag: '"whole"' });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(plain.address() as { port: number }).port}/scene.tif`;
    try {
      const r = await withEnv(S3_ENV, () => registerImagery(ctx.db, ctx.config, '2024-06', [url]));
      expect(r.registered).toEqual([]);
      expect(r.refused).toHaveLength(1);
      expect(r.refused[0]).toMatchObject({ path: url, code: 'range_unsupported' });
      expect(r.refused[0].reason).toContain(`${url}: asked for`);
    } finally {
      plain.closeAllConnections();
      await new Promise((r) => plain.close(r));
    }
  });

  it('fails only the tiles whose URL went away, stopped answering or changed, each with its reason', async () => {
    const { config, db } = ctx;
    await registerFixtureMonths(db, config, fixturesDir); // 2024-02 local: the baseline
    const names = readdirSync(join(root, '2024-03')).sort();
    expect(names).toHaveLength(4);
    const [stalls, vanishes, replaced] = names;
    const urls = names.map((n) => `${n === stalls ? proxy.url : server.url}/2024-03/${n}`);
    await withEnv(S3_ENV, async () => {
      const r = await registerImagery(db, config, '2024-05', urls, '2024-05-12');
      expect(r.refused).toEqual([]);
      expect(r.registered.map((i) => i.path)).toEqual([...urls].sort());

      rmSync(join(root, '2024-03', vanishes));
      copyFileSync(join(fixturesDir, 'imagery', '2024-02', replaced), join(root, '2024-03', replaced));
      proxy.stall = 'ranges'; // it still opens (HEAD), then stops answering its ranged reads
      const s = await runBatch(db, config, '2024-05', '2024-02');
      expect(s.status).toBe('completed_with_failures');
      expect(s.tiles).toEqual({ total: 4, ok: 1, failed: 3 });
      const failed = Object.fromEntries(s.failedTiles.map((f) => [f.path.split('/').pop(), f]));
      expect(failed[vanishes]).toMatchObject({ code: 'file_missing' });
      expect(failed[vanishes].reason).toContain(`${server.url}/2024-03/${vanishes}: not found`);
      expect(failed[stalls]).toMatchObject({ code: 'unreachable' });
      expect(failed[stalls].reason).toContain('no answer within 1.5 s');
      expect(failed[replaced]).toMatchObject({ code: 'changed_since_registration' });
      expect(failed[replaced].reason).toContain(`${server.url}/2024-03/${replaced}`);
    });
  });
});
