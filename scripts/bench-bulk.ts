/**
 * Benchmark: a month's volume in one request. N patches (default 1,000) of one month in one town are
 * made in a schema of their own on the real PostgreSQL (copies of a square around the town's corner,
 * as a batch would store them), then `POST /api/patches/actions/dispatch` with the month as its filter
 * dispatches them all through the server (Fastify inject: no network), each judged on its own with its
 * history event, in one transaction with one audit row; then a supervisor's bulk `escalate` of them all.
 * The town's group and the supervisors' have robots set up, so each move also writes its messages to
 * the outbox (nothing is sent: no worker runs). Prints the wall time of each and the time per patch.
 * The schema is dropped afterwards.
 *
 *   npx tsx scripts/bench-bulk.ts [--patches 1000]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { patches: { type: 'string' } } });
const n = Number(values.patches ?? 1000);
if (!Number.isInteger(n) || n < 1 || n > 5000) {
  console.error(`--patches ${values.patches}: expected 1–5000`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { loadConfig } = await import('../config/env.ts');
  const { openDb } = await import('../store/db.ts');
  const { migrate } = await import('../store/migrate.ts');
  const { importLayer } = await import('../store/layers.ts');
  const { createUser, issueToken } = await import('../store/users.ts');
  const { buildServer } = await import('../server/app.ts');
  const { workflowEnv } = await import('../workflow/env.ts');
  const work = mkdtempSync(join(tmpdir(), 'tuban-bench-bulk-'));
  const id = randomBytes(3).toString('hex');
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    TUBAN_DB_SCHEMA: `tuban_bench_bulk_${id}`,
    TUBAN_DATA_DIR: work,
    TUBAN_LOG_LEVEL: 'warn',
  });
  const db = await openDb(config);
  try {
    await migrate(db, config);
    const town = join(work, 'town.geojson');
    writeFileSync(
      town,
      JSON.stringify({
        type: 'FeatureCollection',
        crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::4548' } },
        features: [
          {
            type: 'Feature',
            properties: { code: '350206001', name: '殿前街道', district_code: '350206' },
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [611000, 2712000],
                  [613000, 2712000],
                  [613000, 2714000],
                  [611000, 2714000],
                  [611000, 2712000],
                ],
              ],
            },
          },
        ],
      }),
    );
    await importLayer(db, town, 'town');
    const [batch] = await db('batch')
      .insert({
        month: '2024-03',
        baseline_month: '2024-02',
        status: 'completed',
        model_name: 'bench',
        model_version: '0',
      })
      .returning('id');
    // n patches of 20 m × 20 m on a 40 m grid
    await db.raw(
      `insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, area_m2, source_tiles,
                          model_name, model_version, status, geom, centroid, extension_m2)
       select '350206-202403-' || lpad(k::text, 5, '0'), '2024-03', k, ?, '2024-02', '350206', '350206001', '殿前街道', 400,
              '{}', 'bench', '0', 'detected', g, ST_PointOnSurface(g), 400
       from generate_series(1, ?) k,
            lateral (select ST_Multi(ST_MakeEnvelope(611000 + (k % 40) * 40, 2712000 + (k / 40) * 40,
                                                      611020 + (k % 40) * 40, 2712020 + (k / 40) * 40, 4548)) g) x`,
      [batch.id, n],
    );
    const { addChannel } = await import('../store/notify.ts');
    const webhook = 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=bench';
    await addChannel(db, 'bench', { name: '殿前街道工作群', kind: 'wecom', webhook, town_code: '350206001' });
    await addChannel(db, 'bench', { name: '督查科', kind: 'wecom', webhook });
    await createUser(db, { username: 'ana', role: 'analyst' });
    await createUser(db, { username: 'sup', role: 'supervisor' });
    const token = { ana: (await issueToken(db, 'ana')).token, sup: (await issueToken(db, 'sup')).token };
    const app = await buildServer({ db, config, env: workflowEnv(config) });
    try {
      const time = async (who: 'ana' | 'sup', action: string, payload: unknown) => {
        const t0 = performance.now();
        const r = await app.inject({
          method: 'POST',
          url: `/api/patches/actions/${action}`,
          headers: { authorization: `Bearer ${token[who]}`, 'content-type': 'application/json' },
          payload: JSON.stringify(payload),
        });
        const s = (performance.now() - t0) / 1000;
        if (r.statusCode !== 200) throw new Error(`${action}: ${r.statusCode} ${r.body.slice(0, 300)}`);
        const body = r.json() as { moved: number; refused: number };
        console.log(
          `${action} ${n} patches in one request: ${body.moved} moved, ${body.refused} refused, ${s.toFixed(2)} s (${((1000 * s) / n).toFixed(2)} ms a patch)`,
        );
      };
      await time('ana', 'dispatch', { select: { month: '2024-03' } });
      await time('sup', 'escalate', { select: { month: '2024-03', status: 'dispatched' }, body: { reason: 'bench' } });
      const [{ events }] = (await db.raw('select count(*)::int as events from patch_event')).rows;
      const [{ audits }] = (await db.raw('select count(*)::int as audits from audit_event')).rows;
      const [{ messages }] = (await db.raw('select count(*)::int as messages from notify_outbox')).rows;
      console.log(`history events ${events}, audit rows ${audits}, outbox messages ${messages}`);
    } finally {
      await app.close();
    }
  } finally {
    await db.raw(`drop schema if exists ${config.TUBAN_DB_SCHEMA} cascade`);
    await db.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
