import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, type Config } from '../config/env.ts';
import { reportPatch } from '../store/report.ts';
import { buildServer } from '../server/app.ts';
import { openDb, townScope, type Db } from '../store/db.ts';
import { listPatchesFor } from '../store/workflow.ts';
import { migrate } from '../store/migrate.ts';
import { createUser, issueToken } from '../store/users.ts';
import { createLogger } from '../core/log.ts';
import { apiCaller, testWorkflowEnv } from './helpers/api.ts';
import { loadFixtureLayers, registerFixtureMonths, runBatch } from './helpers/batch.ts';
import { cleanup, isolatedConfig, TEST_DATABASE_URL } from './helpers/services.ts';

/** The test database's URL as another role (trust or peer authentication, as on the CI machine). */
function urlAs(role: string): string {
  const u = new URL(TEST_DATABASE_URL);
  u.username = role;
  u.password = '';
  return u.toString();
}

/**
 * Issue 17, finding 6: the tables are owned by a role the app does not log in as. Migrations run
 * as the owner and grant the app role rows (history tables: insert and read only); the whole
 * batch and the workflow then run as the app role, which can neither switch the append-only rule
 * off nor rewrite history. Uses the roles .ci/run creates (TUBAN_TEST_OWNER_ROLE,
 * TUBAN_TEST_APP_ROLE), or makes throwaway ones when the test database lets it.
 */
describe('roles: the app owns none of its tables', () => {
  const fixturesDir = inject('fixturesDir');
  const id = randomBytes(3).toString('hex');
  const made: string[] = [];
  let admin: Knex;
  let owner: Config;
  let app: Config;
  let ownerDb: Db;
  let appDb: Db;
  let ownerRole: string;
  let appRole: string;

  beforeAll(async () => {
    admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    // PostGIS is not a trusted extension: a superuser creates it, as a deployment's DBA does (under the
    // lock migrate takes, so a test file migrating at the same moment does not collide)
    await admin.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [0x7475626d]);
      await trx.raw('create extension if not exists postgis');
    });
    ownerRole = process.env.TUBAN_TEST_OWNER_ROLE ?? '';
    appRole = process.env.TUBAN_TEST_APP_ROLE ?? '';
    if (!ownerRole || !appRole) {
      ownerRole = `tuban_owner_${id}`;
      appRole = `tuban_app_${id}`;
      const db = (await admin.raw('select current_database() as d')).rows[0].d;
      for (const r of [ownerRole, appRole]) {
        await admin.raw(`create role "${r}" login nosuperuser`);
        made.push(r);
      }
      await admin.raw(`grant create on database "${db}" to "${ownerRole}"`);
    }
    owner = isolatedConfig({ DATABASE_URL: urlAs(ownerRole), TUBAN_APP_ROLE: appRole });
    app = loadConfig({
      ...process.env,
      DATABASE_URL: urlAs(appRole),
      TUBAN_DB_SCHEMA: owner.TUBAN_DB_SCHEMA,
      TUBAN_QUEUE_PREFIX: owner.TUBAN_QUEUE_PREFIX,
      TUBAN_DATA_DIR: owner.dataDir,
      TUBAN_MODEL_DIR: owner.TUBAN_MODEL_DIR,
      TUBAN_LOG_LEVEL: owner.TUBAN_LOG_LEVEL,
    });
    ownerDb = await openDb(owner);
    await migrate(ownerDb, owner);
    appDb = await openDb(app);
  });

  /** The fixture month, loaded and run as the app role once, whichever scenario asks first. */
  let monthRun: ReturnType<typeof runBatch> | null = null;
  const month = () =>
    (monthRun ??= (async () => {
      await loadFixtureLayers(appDb, fixturesDir);
      await registerFixtureMonths(appDb, app, fixturesDir);
      const batch = await runBatch(appDb, app, '2024-03', '2024-02');
      await createUser(appDb, { username: 'ana', role: 'analyst' });
      return batch;
    })());

  afterAll(async () => {
    await appDb?.destroy();
    if (owner) await cleanup(ownerDb, owner);
    for (const r of made.reverse()) {
      await admin.raw(`drop owned by "${r}"`);
      await admin.raw(`drop role "${r}"`);
    }
    await admin?.destroy();
  });

  it('runs the monthly batch and the workflow as the app role; the history stays append-only', async () => {
    const tables = await ownerDb.raw(`select tablename, tableowner from pg_tables where schemaname = ?`, [
      owner.TUBAN_DB_SCHEMA,
    ]);
    expect(tables.rows.length).toBeGreaterThan(10);
    for (const t of tables.rows) expect(t.tableowner, t.tablename).toBe(ownerRole);

    // the whole month as the app: layers, imagery, batch, users, a lifecycle step through the API
    const batch = await month();
    expect(batch.patches.new).toBeGreaterThan(0);
    const token = { ana: (await issueToken(appDb, 'ana')).token };
    const server = await buildServer({
      db: appDb,
      config: app,
      env: testWorkflowEnv(() => '2024-03-18'),
      log: createLogger('error', () => {}),
    });
    try {
      const call = apiCaller(() => server, token);
      const code = (await call('ana', 'GET', '/api/patches?month=2024-03')).json().patches[0].code;
      const r = await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {});
      expect(r.statusCode, r.body).toBe(200);
    } finally {
      await server.close();
    }
    expect(Number((await appDb('audit_event').count({ n: '*' }))[0].n)).toBeGreaterThan(0);

    // what the review did as the app's role: switch the rule off, rewrite or wipe history
    const attacks: [string, RegExp][] = [
      ['alter table audit_event disable trigger audit_event_no_update', /must be owner/],
      ['alter table patch_event disable trigger all', /must be owner/],
      ['update audit_event set status = 200', /permission denied/],
      ['delete from patch_event', /permission denied/],
      ['truncate audit_event', /permission denied/],
      ['drop table patch_event', /must be owner/],
      ['drop trigger patch_event_no_update on patch_event', /must be owner/],
    ];
    for (const [sql, refusal] of attacks) await expect(appDb.raw(sql), sql).rejects.toThrow(refusal);
    // the owner is held by the triggers, each naming its own table
    await expect(ownerDb.raw('update audit_event set status = 200')).rejects.toThrow(
      /audit_event is append-only: UPDATE refused/,
    );
    await expect(ownerDb.raw('delete from patch_event')).rejects.toThrow(/patch_event is append-only: DELETE refused/);
  });

  it("holds a town user's query to the town in the database itself: a query without its town filter sees no other town", async () => {
    await month();
    const all = await appDb('patch').orderBy('code').select('code', 'town_code', 'id');
    const own = all.filter((p) => p.town_code === '350206001');
    const other = all.find((p) => p.town_code !== '350206001')!;
    expect(own.length).toBeGreaterThan(0);
    expect(other).toBeDefined();
    // (a knex query runs when awaited: inside the scope)
    const asTown = <T>(work: () => PromiseLike<T>) => townScope.run({ town: '350206001' }, async () => await work());
    // an analyst's list (no town filter at all), run for a town user: the database leaves only the town
    const analyst = { id: 0, username: 'ana', displayName: '', role: 'analyst' as const, townCode: null };
    const listed = await asTown(() =>
      listPatchesFor(appDb, analyst, { month: '2024-03', limit: 1000, offset: 0, sort: 'code', dir: 'asc' } as never),
    );
    expect(listed.patches.map((p) => p.code).sort()).toEqual(own.map((p) => p.code));
    expect(
      (
        await listPatchesFor(appDb, analyst, {
          month: '2024-03',
          limit: 1000,
          offset: 0,
          sort: 'code',
          dir: 'asc',
        } as never)
      ).patches,
    ).toHaveLength(all.length);
    // bare queries, and what hangs on a patch
    expect(await asTown(() => appDb('patch').pluck('code'))).toEqual(expect.arrayContaining(own.map((p) => p.code)));
    expect(await asTown(() => appDb('patch').where({ id: other.id }).first())).toBeUndefined();
    expect(await asTown(() => appDb('patch_event').where({ patch_id: other.id }))).toEqual([]);
    expect((await appDb('patch_event').where({ patch_id: other.id })).length).toBeGreaterThan(0);
    // nor can it write there: an update touches nothing, a history row is refused
    expect(await asTown(() => appDb('patch').where({ id: other.id }).update({ town_name: 'x' }))).toBe(0);
    await expect(
      asTown(() => appDb('patch_event').insert({ patch_id: other.id, actor: 'dianqian', type: 'note', detail: '{}' })),
    ).rejects.toThrow(/row-level security/);
    // a note on its own patch is written, and the patch keeps it (migration 036's trigger, as the app role)
    await asTown(() =>
      appDb('patch_event').insert({
        patch_id: own[0].id,
        actor: 'dianqian',
        type: 'note',
        detail: '{"text":"已核实"}',
      }),
    );
    expect(await appDb('patch').where({ id: own[0].id }).first('latest_note')).toEqual({ latest_note: '已核实' });
    // the setting is the connection's: the next work outside a town sees every town again
    expect(await appDb('patch').count({ n: '*' })).toEqual([{ n: String(all.length) }]);
    // and through the server: a town user's request runs in its town's scope
    await createUser(appDb, { username: 'dq', role: 'town', townCode: '350206001' }).catch(() => undefined);
    const token = { dq: (await issueToken(appDb, 'dq')).token };
    const server = await buildServer({
      db: appDb,
      config: app,
      env: testWorkflowEnv(() => '2024-03-18'),
      log: createLogger('error', () => {}),
    });
    try {
      const call = apiCaller(() => server, token);
      expect((await call('dq', 'GET', `/api/patches/${other.code}`)).statusCode).toBe(404);
      const mine = (await call('dq', 'GET', '/api/patches?month=2024-03')).json().patches;
      expect(mine.map((p: { code: string }) => p.code).sort()).toEqual(own.map((p) => p.code));
      // a report numbers on from the district's highest code, another town's included: an analyst's report
      // in 禾山 takes the next code, then the 殿前 clerk's (under the town's scope, max(seq) would be 殿前's
      // own and the code taken twice)
      const spot = async (town: string) =>
        (
          await appDb.raw(
            `select ST_AsGeoJSON(ST_Transform(ST_Buffer(ST_PointOnSurface(geom), 4, 8), 4326), 8)::json as g
             from reference_feature where kind = 'town' and code = ?`,
            [town],
          )
        ).rows[0].g;
      const before = Number((await appDb('patch').max({ m: 'seq' }))[0].m);
      await reportPatch(
        appDb,
        testWorkflowEnv(() => '2024-03-18'),
        { touchM: 1, onBuildingShare: 0.5 },
        analyst,
        {
          outline: await spot('350206002'),
          source: 'complaint',
          visible: false,
          request_key: 'roles-analyst-1',
        },
      );
      const r = await call('dq', 'POST', '/api/patches', {
        outline: await spot('350206001'),
        source: 'patrol',
        visible: false,
        request_key: 'roles-town-0001',
      });
      expect(r.statusCode, r.body).toBe(201);
      expect(r.json().code).toBe(`350206-202403-${String(before + 2).padStart(4, '0')}`);
      // and the town's scope is back for what follows
      expect((await call('dq', 'GET', `/api/patches/${other.code}`)).statusCode).toBe(404);
      // the monthly ranking and the yearly register are published to every town: the other town's counts are
      // its own, not what the town's scope would let a query see (none)
      const live = async (town: string) =>
        Number(
          (
            await appDb('patch')
              .where({ month: '2024-03', town_code: town })
              .whereNotIn('status', ['merged', 'split'])
              .count({ n: '*' })
          )[0].n,
        );
      expect(await live('350206002')).toBeGreaterThan(0);
      const ranking = (await call('dq', 'GET', '/api/reports/monthly?month=2024-03')).json();
      const register = (await call('dq', 'GET', '/api/reports/yearly?year=2024')).json();
      for (const town of ['350206001', '350206002']) {
        const n = await live(town);
        expect(ranking.towns.find((t: { town_code: string }) => t.town_code === town).new_patches, town).toBe(n);
        expect(register.towns.find((t: { town_code: string }) => t.town_code === town).new_patches, town).toBe(n);
      }
      expect(register.months).toEqual(['2024-03']);
      // the April ranking sets each town against March's count, from the tally (which has no town scope)
      const april = (await call('dq', 'GET', '/api/reports/monthly?month=2024-04')).json();
      expect(april.towns.find((t: { town_code: string }) => t.town_code === '350206002')).toMatchObject({
        new_patches: 0,
        prev_new_patches: await live('350206002'),
      });
      expect((await call('dq', 'GET', `/api/patches/${other.code}`)).statusCode).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('refuses to migrate as the app role itself', async () => {
    await expect(migrate(appDb, app.TUBAN_APP_ROLE ? app : { ...app, TUBAN_APP_ROLE: appRole })).rejects.toThrow(
      /owner role, not as the app role|must be owner|permission denied/,
    );
  });
});
