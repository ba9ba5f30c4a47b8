/**
 * Benchmark: a province in one database (issue 33). Builds, in a schema of its own on the real
 * PostgreSQL, 300 towns in 30 districts and N patches (default 1,000,000) over 36 months in the
 * states a bureau's history leaves them in (old months mostly closed or dismissed, the last ones
 * open, some overdue and escalated), about 4.6 history events and 3.4 audit rows per patch; runs
 * VACUUM ANALYZE, as autovacuum would after such inserts; then times the requests a town clerk, an analyst and a supervisor
 * make (Fastify inject: no network), 7 times each, and prints each one's median and max (and the median
 * time to its first bytes: a streamed answer starts long before it ends). The
 * schema is dropped afterwards unless --keep.
 *
 *   npx tsx scripts/bench-scale.ts [--patches 1000000] [--runs 7] [--keep]
 *   npx tsx scripts/bench-scale.ts --schema tuban_bench_scale_xxxxxx   # time again a province kept before
 *
 * The server is given a connection as `tuban serve` opens it (its statement time limit, no JIT).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    patches: { type: 'string' },
    runs: { type: 'string' },
    keep: { type: 'boolean' },
    schema: { type: 'string' },
  },
});
const n = Number(values.patches ?? 1_000_000);
const runs = Number(values.runs ?? 7);
if (!Number.isInteger(n) || n < 1000 || n > 20_000_000) {
  console.error(`--patches ${values.patches}: expected 1,000–20,000,000`);
  process.exit(2);
}

const MONTHS = 36;
const DISTRICTS = 30;
const TOWNS_PER_DISTRICT = 10;
const TOWN_M = 5000;
/** The bench's today: two weeks into the month after the last one. */
const TODAY = '2026-01-15';
const monthOf = (i: number) => {
  const y = 2023 + Math.floor(i / 12);
  return `${y}-${String((i % 12) + 1).padStart(2, '0')}`;
};
const LATEST = monthOf(MONTHS - 1);

const say = (s: string) => console.log(s);
const t = () => performance.now();

async function main(): Promise<void> {
  const { loadConfig } = await import('../config/env.ts');
  const { openDb } = await import('../store/db.ts');
  const { migrate } = await import('../store/migrate.ts');
  const { importLayer } = await import('../store/layers.ts');
  const { createUser, issueToken } = await import('../store/users.ts');
  const { buildServer } = await import('../server/app.ts');
  const { workflowEnv } = await import('../workflow/env.ts');
  const { csvPlan } = await import('../export/patches.ts');
  const work = mkdtempSync(join(tmpdir(), 'tuban-bench-scale-'));
  const id = randomBytes(3).toString('hex');
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    TUBAN_DB_SCHEMA: values.schema ?? `tuban_bench_scale_${id}`,
    TUBAN_DATA_DIR: work,
    TUBAN_LOG_LEVEL: 'warn',
  });
  const db = await openDb(config);
  const schema = config.TUBAN_DB_SCHEMA;
  const reuse = values.schema !== undefined;
  let served = null as Awaited<ReturnType<typeof openDb>> | null;
  try {
    await migrate(db, config);
    if (reuse) {
      say(
        `schema ${schema} as kept: ${Number((await db('patch').count({ n: '*' }))[0].n).toLocaleString('en')} patches`,
      );
      await db.raw('vacuum analyze patch');
    } else await build();
    await measure();
  } finally {
    await served?.destroy();
    if (!values.keep && !reuse) await db.raw(`drop schema "${schema}" cascade`);
    else say(`kept schema ${schema}`);
    await db.destroy();
    rmSync(work, { recursive: true, force: true });
  }

  async function build(): Promise<void> {
    say(
      `schema ${schema}: ${n.toLocaleString('en')} patches over ${MONTHS} months in ${DISTRICTS * TOWNS_PER_DISTRICT} towns`,
    );

    // 300 towns: 30 districts of 10, each town a 5 km square on a 30 × 10 grid, its sides winding as
    // roads and streams do (a vertex every 20 m, up to ±23 m off the line; a side shared by two towns
    // is the same line in both): 1,000 vertices a town, as a city's surveyed boundaries have
    const STEP = 20;
    const wind = (t: number, key: number) =>
      Math.sin((Math.PI * t) / TOWN_M) *
      (15 * Math.sin(t / 37 + key) + 6 * Math.sin(t / 11.3 + 2 * key) + 2 * Math.sin(t / 3.1 + 3 * key));
    /** One side from (x, y) along +x (horizontal) or +y, without its last vertex. */
    const side = (x: number, y: number, horizontal: boolean) => {
      const key = (horizontal ? y : x) / 1700;
      const out: number[][] = [];
      for (let t = 0; t < TOWN_M; t += STEP)
        out.push(horizontal ? [x + t, y + wind(t, key)] : [x + wind(t, key), y + t]);
      return out;
    };
    const towns = [];
    for (let d = 0; d < DISTRICTS; d++)
      for (let k = 0; k < TOWNS_PER_DISTRICT; k++) {
        const i = d * TOWNS_PER_DISTRICT + k;
        const [x0, y0] = [400_000 + (i % 30) * TOWN_M, 2_600_000 + Math.floor(i / 30) * TOWN_M];
        const district = `35${String(10 + d).padStart(2, '0')}00`;
        towns.push({
          type: 'Feature',
          properties: {
            code: `${district}${String(k + 1).padStart(3, '0')}`,
            name: `镇街${i + 1}`,
            district_code: district,
          },
          geometry: {
            type: 'Polygon',
            coordinates: [
              [
                ...side(x0, y0, true),
                ...side(x0 + TOWN_M, y0, false),
                [x0 + TOWN_M, y0 + TOWN_M],
                ...side(x0, y0 + TOWN_M, true).reverse(),
                ...side(x0, y0, false).reverse(),
              ].map(([x, y]) => [Math.round(x * 100) / 100, Math.round(y * 100) / 100]),
            ],
          },
        });
      }
    const townFile = join(work, 'towns.geojson');
    writeFileSync(
      townFile,
      JSON.stringify({
        type: 'FeatureCollection',
        crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::4548' } },
        features: towns,
      }),
    );
    await importLayer(db, townFile, 'town');

    let t0 = t();
    const batches = [];
    for (let m = 0; m < MONTHS; m++)
      batches.push(
        (
          await db('batch')
            .insert({
              month: monthOf(m),
              baseline_month: monthOf(Math.max(0, m - 1)),
              status: 'completed',
              model_name: 'bench',
              model_version: '0',
            })
            .returning('id')
        )[0].id,
      );
    // the patches: month m = k mod 36, town by a multiplicative hash, a 20 m square in the town;
    // state by the month's age and a second hash (r in [0, 1000))
    await db.raw(
      `create unlogged table bench_seed as
       select k, m, town, r, to_char(date '2023-01-01' + make_interval(months => m::int), 'YYYY-MM') as month,
              date '2023-01-01' + make_interval(months => m::int) as start,
              ${MONTHS - 1} - m as age
       from (select k, k % ${MONTHS} as m, (k * 7919) % 300 as town, (k * 2654435761) % 1000 as r
             from generate_series(1, ?::bigint) k) s`,
      [n],
    );
    await db.raw(
      `insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, area_m2,
                          source_tiles, model_name, model_version, status, geom, centroid, extension_m2, class, mean_prob,
                          dispatched_at, verify_due, verification_result, verified_at, violation, measure, rectify_due,
                          rectified_at, closed_at, dismiss_reason, overdue_since, escalated_at, latest_note)
       select patch_code(t.district_code, s.month, row_number() over (partition by t.district_code, s.month order by s.k)),
              s.month, row_number() over (partition by t.district_code, s.month order by s.k), (?::bigint[])[s.m + 1],
              to_char(s.start - interval '1 month', 'YYYY-MM'), t.district_code, t.code, t.name, 400,
              '{}', 'bench', '0', st.status, g.geom, ST_PointOnSurface(g.geom), 400,
              (array['general', 'general', 'general', 'farmland', 'ecological', 'water'])[1 + s.k % 6], 0.9,
              case when st.status <> 'detected' and st.status <> 'dismissed' then s.start + interval '5 days' end,
              case when st.status <> 'detected' and st.status <> 'dismissed' then (s.start + interval '12 days')::date end,
              case when st.status in ('illegal', 'rectifying', 'rectified', 'closed') then 'illegal'
                   when st.status in ('legal', 'false_change') then st.status end,
              case when st.status in ('illegal', 'rectifying', 'rectified', 'closed', 'legal', 'false_change') then s.start + interval '10 days' end,
              case when st.status in ('illegal', 'rectifying', 'rectified', 'closed') then 'construction' end,
              case when st.status in ('rectifying', 'rectified', 'closed') then 'demolish' end,
              case when st.status in ('rectifying', 'rectified', 'closed') then (s.start + interval '60 days')::date end,
              case when st.status in ('rectified', 'closed') then s.start + interval '50 days' end,
              case when st.status = 'closed' then s.start + interval '55 days' end,
              case when st.status = 'dismissed' then 'cloud' end,
              case when st.status = 'dispatched' and s.start + interval '12 days' < date '${TODAY}' then (s.start + interval '13 days')::date
                   when st.status = 'rectifying' and s.start + interval '60 days' < date '${TODAY}' then (s.start + interval '61 days')::date end,
              case when st.status in ('dispatched', 'rectifying') and s.age > 2 and s.r % 5 = 0 then s.start + interval '70 days' end,
              case when s.k % 2 = 0 then '现场核实：业主称为临时搭建，已告知限期自行拆除' end
       from bench_seed s
       join (select code, name, district_code, row_number() over (order by code) - 1 as i
             from reference_feature where kind = 'town') t on t.i = s.town
       cross join lateral (
         select case
           when s.age = 0 then (case when s.r < 400 then 'detected' when s.r < 800 then 'dispatched' when s.r < 950 then 'dismissed' when s.r < 980 then 'illegal' else 'rectifying' end)
           when s.age <= 2 then (case when s.r < 150 then 'closed' when s.r < 350 then 'dismissed' when s.r < 400 then 'legal' when s.r < 500 then 'false_change'
                                      when s.r < 750 then 'rectifying' when s.r < 800 then 'illegal' when s.r < 850 then 'rectified' else 'dispatched' end)
           else (case when s.r < 450 then 'closed' when s.r < 650 then 'dismissed' when s.r < 750 then 'legal' when s.r < 900 then 'false_change'
                      when s.r < 950 then 'rectifying' when s.r < 970 then 'illegal' else 'dispatched' end)
         end as status) st
       cross join lateral (
         select ST_Multi(ST_MakeEnvelope(
           400000 + (s.town % 30) * ${TOWN_M} + 20 + (s.k * 37) % 4900, 2600000 + (s.town / 30) * ${TOWN_M} + 20 + (s.k * 91) % 4900,
           400000 + (s.town % 30) * ${TOWN_M} + 40 + (s.k * 37) % 4900, 2600000 + (s.town / 30) * ${TOWN_M} + 40 + (s.k * 91) % 4900,
           4548)) as geom) g`,
      [batches],
    );
    await db.raw('drop table bench_seed');
    say(`patches: ${((t() - t0) / 1000).toFixed(0)} s`);

    // history: detected, then each step the patch's state implies (about 4.6 a patch), and half a note each;
    // the patches hold their latest note already (above), so the trigger that keeps it (migration 036) is
    // spared 5 M updates here
    t0 = t();
    await db.raw('alter table patch_event disable trigger patch_latest_note');
    try {
      await db.raw(
        `insert into patch_event (patch_id, actor, type, from_status, to_status, detail)
         select p.id, e.actor, e.type, e.from_status, e.to_status,
                case when e.type = 'note' then jsonb_build_object('text', p.latest_note) else '{}'::jsonb end
         from patch p
         cross join lateral (values
           (1, 'system', 'detected', null, 'detected'),
           (2, 'ana', 'dispatch', 'detected', 'dispatched'),
           (3, 'town', 'verify', 'dispatched', coalesce(p.verification_result, 'illegal')),
           (4, 'town', 'rectify', 'illegal', 'rectifying'),
           (5, 'town', 'report_rectified', 'rectifying', 'rectified'),
           (6, 'sup', 'close', 'rectified', 'closed'),
           (7, 'ana', 'dismiss', 'detected', 'dismissed'),
           (8, 'sup', 'escalated', p.status, p.status),
           (9, 'town', 'note', p.status, p.status)
         ) e(step, actor, type, from_status, to_status)
         where e.step = 1
            or (e.step = 2 and p.dispatched_at is not null)
            or (e.step = 3 and p.verified_at is not null)
            or (e.step = 4 and p.rectify_due is not null)
            or (e.step = 5 and p.rectified_at is not null)
            or (e.step = 6 and p.closed_at is not null)
            or (e.step = 7 and p.status = 'dismissed')
            or (e.step = 8 and p.escalated_at is not null)
            or (e.step = 9 and p.latest_note is not null)`,
      );
    } finally {
      await db.raw('alter table patch_event enable always trigger patch_latest_note');
    }
    const events = Number((await db('patch_event').count({ n: '*' }))[0].n);
    say(`events: ${events.toLocaleString('en')} in ${((t() - t0) / 1000).toFixed(0)} s`);

    t0 = t();
    await db.raw(
      `insert into audit_event (user_id, username, remote_addr, method, path, status, detail)
       select null::bigint, 'town', '10.0.0.1', 'POST', '/api/patches/' || p.code || '/actions/verify', 200, '{}'::jsonb
       from patch p, generate_series(1, 3) g
       union all
       select null::bigint, 'ana', '10.0.0.2', 'POST', '/api/patches/' || p.code || '/notes', 201, '{}'::jsonb
       from patch p where p.id % 5 < 2`,
    );
    const audits = Number((await db('audit_event').count({ n: '*' }))[0].n);
    say(`audit rows: ${audits.toLocaleString('en')} in ${((t() - t0) / 1000).toFixed(0)} s`);
    t0 = t();
    await db.raw('vacuum analyze');
    say(`vacuum analyze: ${((t() - t0) / 1000).toFixed(0)} s`);
  }

  async function measure(): Promise<void> {
    // the people: the busiest town's clerk, an analyst, a supervisor
    // (a kept province keeps its clerk and the clerk's town)
    const busiest = ((await db('app_user').where({ username: 'clerk' }).first('town_code'))?.town_code ??
      (
        await db('patch')
          .where({ month: LATEST })
          .groupBy('town_code')
          .orderByRaw('count(*) desc, town_code')
          .first('town_code')
      ).town_code) as string;
    if (!(await db('app_user').where({ username: 'clerk' }).first())) {
      await createUser(db, { username: 'clerk', role: 'town', townCode: busiest });
      await createUser(db, { username: 'ana', role: 'analyst' });
      await createUser(db, { username: 'sup', role: 'supervisor' });
    }
    const token: Record<string, string> = {};
    for (const u of ['clerk', 'ana', 'sup']) token[u] = (await issueToken(db, u)).token;
    const env = { ...workflowEnv(config), today: () => TODAY };
    served = await openDb(config, { statementTimeoutMs: config.TUBAN_HTTP_TIMEOUT_S * 1000 });
    const app = await buildServer({ db: served, config, env });
    const own = (await db('patch').where({ town_code: busiest, month: LATEST }).first('code')).code as string;
    // page 400 of the closed cases (or the last, in a smaller province), and the cursor the page before hands on
    const closed = Number((await db('patch').where({ status: 'closed' }).count({ n: '*' }))[0].n);
    const deep = Math.max(1, Math.min(20_000, closed - 50));
    const cursor = (
      await db('patch')
        .where({ status: 'closed' })
        .orderBy('code')
        .offset(deep - 1)
        .first('code')
    ).code as string;
    // the to-do's second page by its cursor, as 显示更多 asks for it: where each user's first page ended
    const todoNext: Record<string, string> = {};
    for (const who of ['clerk', 'ana']) {
      const first = await app.inject({
        method: 'GET',
        url: '/api/todo',
        headers: { authorization: `Bearer ${token[who]}` },
      });
      const next = (first.json() as { next_after?: string | null }).next_after;
      todoNext[who] = next ? `/api/todo?after=${encodeURIComponent(next)}` : '/api/todo';
    }
    const requests: [string, string, string][] = [
      ['clerk', 'to-do', '/api/todo'],
      ['clerk', '… its next page by its cursor', todoNext.clerk],
      ['clerk', "the month's list", `/api/patches?month=${LATEST}&limit=50`],
      ['clerk', "the web map's default view", `/api/map/patches?month=${LATEST}&limit=1000`],
      ['clerk', 'a patch page', `/api/patches/${own}`],
      ['ana', 'to-do', '/api/todo'],
      ['ana', '… its next page by its cursor', todoNext.ana],
      ['ana', "the month's list, first page", `/api/patches?month=${LATEST}&limit=50`],
      ['ana', "the month's list, page 200", `/api/patches?month=${LATEST}&limit=50&offset=10000`],
      ['ana', 'all months, closed, page 400', `/api/patches?status=closed&limit=50&offset=${deep}`],
      ['ana', '… page 400 by its cursor', `/api/patches?status=closed&limit=50&after=${cursor}`],
      ['ana', "the web map's default view", `/api/map/patches?month=${LATEST}&limit=1000`],
      ['ana', "the month's CSV", `/api/export?month=${LATEST}&format=csv`],
      ['sup', 'the board', '/api/reports/board'],
      ['sup', 'the trend', `/api/reports/trend?month=${LATEST}`],
      ['sup', 'the monthly report', `/api/reports/monthly?month=${LATEST}`],
      ['sup', 'the towns layer', '/api/map/towns'],
      ['clerk', 'the towns layer, overview (z=0)', '/api/map/towns?z=0'],
      ['clerk', 'the towns layer, district (z=3)', '/api/map/towns?z=3'],
    ];
    say(
      `\n${'who'.padEnd(6)} ${'request'.padEnd(30)} ${'median'.padStart(8)} ${'max'.padStart(8)} ${'bytes'.padStart(10)} ${'first byte'.padStart(10)}`,
    );
    for (const [who, what, url] of requests) {
      const times: number[] = [];
      const firsts: number[] = [];
      let bytes = 0;
      let status = 0;
      for (let i = 0; i < runs; i++) {
        const s = t();
        // as a stream: the answer's headers come with its first bytes (a streamed export long before its last)
        const r = await app.inject({
          method: 'GET',
          url,
          headers: { authorization: `Bearer ${token[who]}` },
          payloadAsStream: true,
        });
        firsts.push(t() - s);
        bytes = 0;
        for await (const chunk of r.stream()) bytes += (chunk as Buffer).length;
        times.push(t() - s);
        status = r.statusCode;
      }
      const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
      const med = median(times);
      say(
        `${who.padEnd(6)} ${what.padEnd(30)} ${med.toFixed(0).padStart(6)} ms ${Math.max(...times)
          .toFixed(0)
          .padStart(
            6,
          )} ms ${String(bytes).padStart(10)} ${median(firsts).toFixed(0).padStart(7)} ms${status === 200 ? '' : ` (HTTP ${status})`}`,
      );
    }
    await app.close();
    // how the month's CSV is read: in index order, or sorted (a plan that sorts took twice as long at 10 M)
    const plan = await csvPlan(served, env, { month: LATEST });
    const steps = plan
      .filter((l) => /Sort|Gather|Scan.* on patch\b/.test(l))
      .map((l) => l.replace(/^[\s>-]*/, '').replace(/\s+\(cost=.*$/, ''));
    say(`\nthe month's CSV is read by: ${steps.join(', under ')}`);
  }
}

await main();
