import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import * as reportBodies from '../api/reports.ts';
import * as responseBodies from '../api/responses.ts';
import { importLayer } from '../store/layers.ts';
import { ACTION_NAMES } from './helpers/api.ts';
import { JPEG } from './helpers/hostile.ts';
import { OTHER, OWN, workflowApi } from './helpers/workflow-api.ts';

/** The tokens, town scope, audit, OpenAPI, through the HTTP API on real PostGIS. */
describe('workflow HTTP API: tokens, town scope, audit, OpenAPI', () => {
  const h = workflowApi();
  const { call, token } = h;

  it('refuses requests without a valid token, and logins with a wrong password', async () => {
    expect((await call(null, 'GET', '/api/patches')).statusCode).toBe(401);
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/patches', headers: { authorization: 'Bearer nope' } }))
        .statusCode,
    ).toBe(401);
    expect((await call(null, 'POST', '/api/login', { username: 'ana', password: 'wrong' })).statusCode).toBe(401);
    // a percent-encoded path reaches the same routes: it must need the token too
    for (const url of [
      '/%61pi/export?month=2024-03&format=geojson',
      '/%61pi/patches',
      '/api/%70atches',
      '/%61pi/map/config',
    ]) {
      expect((await h.app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
    }
    const { rows } = await h.run.db.raw('select token_hash from api_token limit 1');
    expect(rows[0].token_hash).toMatch(/^[0-9a-f]{64}$/); // only hashes are stored
    expect(Object.values(token)).not.toContain(rows[0].token_hash);
  });

  it('refuses in Chinese by default and in English when asked, naming fields in the words of the catalogue', async () => {
    const zh = { 'accept-language': '' };
    const locked = await call('dianqian', 'POST', `/api/patches/${OWN}/actions/close`, {}, zh);
    expect(locked.statusCode).toBe(403);
    expect(locked.json().message).toBe('镇街角色不能执行「销号」，此操作属于督办');
    const stale = await call('dianqian', 'POST', `/api/patches/${OWN}/actions/verify`, { result: 'false_change' }, zh);
    expect(stale.statusCode).toBe(409);
    expect(stale.json().message).toMatch(/^图斑 \S+ 当前为「.+」；「核查」须在「已下发」状态下进行。当前可进行：/);
    // a bad body: the field by its name in the catalogue, what to put there in plain Chinese
    const bad = await call('sup', 'POST', `/api/patches/${OWN}/actions/extend`, { working_days: 0 }, zh);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^「延期」的填写有误：延长工作日：不能小于 1；原因：必须填写/);
    const month = await call('ana', 'GET', '/api/patches?month=2024-3', undefined, { 'accept-language': 'zh-CN' });
    expect(month.json().message).toBe('查询参数：month：YYYY-MM 格式的月份');
    const english = await call('ana', 'GET', '/api/patches?month=2024-3');
    expect(english.json().message).toBe('query: month: a month as YYYY-MM');
    expect((await call(null, 'GET', '/api/patches', undefined, zh)).json().message).toMatch(/^请先登录/);
  });

  it("gives a patch's place as the list and the exports do: its stored centroid in lon/lat", async () => {
    const detail = (await call('dianqian', 'GET', `/api/patches/${OWN}`)).json();
    const row = (await call('dianqian', 'GET', '/api/patches?month=2024-03'))
      .json()
      .patches.find((p: { code: string }) => p.code === OWN);
    expect([detail.lon, detail.lat]).toEqual([row.lon, row.lat]);
    expect(detail.lon).toBeGreaterThan(117);
  });

  it('permission matrix: town users never see or touch another town, in lists, counts, details, actions, evidence or reports', async () => {
    const roles = ['ana', 'sup', 'adm', 'dianqian', 'heshan'] as const;
    const townOf: Record<string, string | null> = {
      ana: null,
      sup: null,
      adm: null,
      dianqian: '350206001',
      heshan: '350206002',
    };
    const upload = await call('dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=site.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(upload.statusCode).toBe(201);
    const evidenceId = upload.json().id;
    let checks = 0;
    for (const who of roles) {
      const town = townOf[who];
      const list = await call(who, 'GET', '/api/patches?month=2024-03');
      expect(list.statusCode).toBe(200);
      const codes = list.json().patches.map((p: { code: string }) => p.code);
      expect(list.json().total, who).toBe(town === '350206001' ? 3 : town === '350206002' ? 2 : 5);
      if (town) expect(list.json().patches.every((p: { town_code: string }) => p.town_code === town)).toBe(true);
      // asking for the other town by filter gives nothing, not the other town's rows
      if (town)
        expect(
          (await call(who, 'GET', `/api/patches?town=${town === '350206001' ? '350206002' : '350206001'}`)).json()
            .total,
        ).toBe(0);
      for (const code of [OWN, OTHER]) {
        const visible = !town || (code === OWN ? town === '350206001' : town === '350206002');
        expect((await call(who, 'GET', `/api/patches/${code}`)).statusCode, `${who} GET ${code}`).toBe(
          visible ? 200 : 404,
        );
        expect(codes.includes(code), `${who} list has ${code}`).toBe(visible);
        // an action on an invisible patch is 404 (no leak), on a visible one 403/409/200 by role and state
        const act = await call(who, 'POST', `/api/patches/${code}/actions/escalate`, { reason: 'matrix' });
        if (!visible) expect(act.statusCode, `${who} escalate ${code}`).toBe(404);
        else expect(act.statusCode, `${who} escalate ${code}`).toBe(who === 'sup' ? 409 : 403);
        checks += 3;
      }
      if (town) {
        const foreign = town === '350206001' ? OTHER : OWN;
        for (const action of ACTION_NAMES) {
          expect(
            (await call(who, 'POST', `/api/patches/${foreign}/actions/${action}`, {})).statusCode,
            `${who} ${action} on ${foreign}`,
          ).toBe(404);
        }
        const up = await call(who, 'POST', `/api/patches/${foreign}/evidence?filename=x.jpg`, JPEG, {
          'content-type': 'image/jpeg',
        });
        expect(up.statusCode, `${who} upload to ${foreign}`).toBe(404);
        const board = (await call(who, 'GET', '/api/reports/board?days=60')).json();
        expect(board.towns.every((t: { town_code: string }) => t.town_code === town)).toBe(true);
        checks += 14;
      }
      if (town)
        expect(
          (await call(who, 'POST', `/api/patches/${town === '350206001' ? OTHER : OWN}/notes`, { text: '偷看' }))
            .statusCode,
          `${who} note on foreign`,
        ).toBe(404);
      const ev = await call(who, 'GET', `/api/evidence/${evidenceId}`);
      expect(ev.statusCode, `${who} evidence`).toBe(town === '350206002' ? 404 : 200);
      const report = await call(who, 'GET', '/api/reports/monthly?month=2024-03');
      expect(
        report.json().towns.map((t: { town_code: string }) => t.town_code),
        `${who} report`,
      ).toEqual(expect.arrayContaining(['350206001', '350206002'])); // the ranking is published to every town
      const usersList = await call(who, 'GET', '/api/users');
      expect(usersList.statusCode, `${who} users`).toBe(who === 'adm' ? 200 : 403);
      const newUser = await call(who, 'POST', '/api/users', { username: `made-by-${who}`, role: 'analyst' });
      expect(newUser.statusCode, `${who} create user`).toBe(who === 'adm' ? 201 : 403);
      const newToken = await call(who, 'POST', '/api/users/dianqian/tokens', {});
      expect(newToken.statusCode, `${who} issue token`).toBe(who === 'adm' ? 201 : 403);
      const me = await call(who, 'GET', '/api/me');
      expect(me.json()).toMatchObject({
        role: { ana: 'analyst', sup: 'supervisor', adm: 'admin', dianqian: 'town', heshan: 'town' }[who],
        townCode: town,
      });
      checks += 7;
    }
    expect(checks).toBe(roles.length * 13 + 2 * 14);
  });

  it('records every mutating request in an audit table the database will not let anyone change', async () => {
    await h.walkToClosed('350206-202403-0005');
    // a refused close is recorded too
    expect((await call('dianqian', 'POST', '/api/patches/350206-202403-0005/actions/close', {})).statusCode).toBe(403);
    // a change writes its row in its own transaction; a refusal's row is written just after the response
    const closes = async () =>
      (
        await h.run.db.raw(
          `select username, method, path, status from audit_event where path like '%actions/close%' order by id`,
        )
      ).rows;
    await expect
      .poll(closes, { timeout: 60_000 })
      .toEqual(
        expect.arrayContaining([
          expect.objectContaining({ username: 'sup', method: 'POST', status: 200 }),
          expect.objectContaining({ username: 'dianqian', status: 403 }),
        ]),
      );
    await expect(h.run.db.raw('update audit_event set status = 200')).rejects.toThrow(/append-only/);
    await expect(h.run.db.raw('delete from audit_event')).rejects.toThrow(/append-only/);
    await expect(h.run.db.raw('update patch_event set actor = ?', ['x'])).rejects.toThrow(/append-only/);
  });

  it('sends the town layer once: an ETag, 304 while unchanged, a new one after the layer is imported again', async () => {
    const first = await call('dianqian', 'GET', '/api/map/towns');
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    const towns = first.json();
    expect(towns.type).toBe('FeatureCollection');
    expect(towns.features.map((f: { id: string }) => f.id).sort()).toEqual(['350206001', '350206002']);
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"towns-/);
    const again = await call('ana', 'GET', '/api/map/towns', undefined, { 'if-none-match': etag });
    expect(again.statusCode).toBe(304);
    expect(again.rawPayload.length).toBe(0);
    // the layer imported again (as a bureau does when a boundary moves): new outlines, a new tag
    await importLayer(h.run.db, join(inject('fixturesDir'), 'layers', 'town.geojson'), 'town');
    const fresh = await call('ana', 'GET', '/api/map/towns', undefined, { 'if-none-match': etag });
    expect(fresh.statusCode).toBe(200);
    expect(fresh.headers.etag).not.toBe(etag);
    expect(fresh.json().features).toHaveLength(2);
  });

  it('pages the list by the code it stopped at, in either order, and only in code order', async () => {
    const codes = async (who: string, query: string) => {
      const r = await call(who, 'GET', `/api/patches?${query}`);
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json();
      return { codes: body.patches.map((p: { code: string }) => p.code), next: body.next_after, total: body.total };
    };
    const all = (await codes('ana', 'limit=100')).codes;
    expect(all).toHaveLength(5);
    const walk = async (who: string, query: string) => {
      const seen: string[] = [];
      let after: string | null = null;
      for (let guard = 0; guard < 10; guard++) {
        const page = await codes(who, `${query}&limit=2${after ? `&after=${after}` : ''}`);
        seen.push(...page.codes);
        // the total is the whole list's, whichever page
        expect(page.total).toBe(who === 'ana' ? 5 : 3);
        if (!page.next) break;
        after = page.next;
      }
      return seen;
    };
    expect(await walk('ana', 'sort=code')).toEqual(all);
    expect(await walk('ana', 'sort=code&dir=desc')).toEqual([...all].reverse());
    // a town clerk's pages hold their town only, the cursor included
    expect(await walk('dianqian', 'sort=code')).toEqual([OWN, '350206-202403-0003', '350206-202403-0005']);
    // the last page says there is none after it, also when it is exactly full
    expect((await codes('ana', `limit=2&after=${all[2]}`)).next).toBeNull();
    const refused = await call('ana', 'GET', `/api/patches?sort=area_m2&after=${all[0]}`);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toMatch(/after/);
    expect((await call('ana', 'GET', '/api/patches?after=%27%3B%20drop')).statusCode).toBe(400);
  });

  it('sends the town layer at the detail of the zoom level asked for, each level with its own ETag', async () => {
    // a town whose boundary follows a stream: 2,400 vertices, wiggling by a few metres
    const srid = (await call('ana', 'GET', '/api/map/config')).json().srid as number;
    const coordinates = (g: { coordinates: unknown[] }) => g.coordinates.flat(Infinity) as number[];
    const [x0, y0] = coordinates((await call('ana', 'GET', '/api/map/towns')).json().features[0].geometry);
    const ring: number[][] = [];
    for (let i = 0; i < 2400; i++) {
      const a = (2 * Math.PI * i) / 2400;
      const r = 3000 + 12 * Math.sin(i / 7) + 4 * Math.sin(i / 1.9);
      ring.push([x0 + 20_000 + r * Math.cos(a), y0 + r * Math.sin(a)]);
    }
    ring.push(ring[0]);
    const file = join(h.run.config.TUBAN_DATA_DIR, 'stream-town.geojson');
    writeFileSync(
      file,
      JSON.stringify({
        type: 'FeatureCollection',
        crs: { type: 'name', properties: { name: `urn:ogc:def:crs:EPSG::${srid}` } },
        features: [
          {
            type: 'Feature',
            properties: { code: '350206003', name: '溪边', district_code: '350206' },
            geometry: { type: 'Polygon', coordinates: [ring] },
          },
          {
            // a town smaller than a pixel of the overview (16 m): it keeps its outline there, not none
            type: 'Feature',
            properties: { code: '350206004', name: '小岛', district_code: '350206' },
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [x0 + 30_000, y0],
                  [x0 + 30_012, y0],
                  [x0 + 30_012, y0 + 9],
                  [x0 + 30_000, y0 + 9],
                  [x0 + 30_000, y0],
                ],
              ],
            },
          },
        ],
      }),
    );
    await importLayer(h.run.db, file, 'town');
    const vertices = (body: { features: { id: string; geometry: { coordinates: unknown[] } }[] }) =>
      coordinates(body.features.find((f) => f.id === '350206003')!.geometry).length / 2;

    const full = await call('ana', 'GET', '/api/map/towns');
    const overview = await call('ana', 'GET', '/api/map/towns?z=0');
    const street = await call('ana', 'GET', '/api/map/towns?z=6');
    expect([full.statusCode, overview.statusCode, street.statusCode]).toEqual([200, 200, 200]);
    // at 16 m a pixel the wiggles are gone; at 0.25 m (the finest level, simplified to 0.5 m) they stay
    expect(vertices(full.json())).toBeGreaterThan(1000);
    expect(vertices(street.json())).toBe(vertices(full.json()));
    expect(vertices(overview.json())).toBeLessThan(vertices(full.json()) / 5);
    expect(overview.rawPayload.length).toBeLessThan(full.rawPayload.length / 5);
    // every town is still there with an outline, whole numbers of metres at that scale
    expect(overview.json().features).toHaveLength(4);
    const islet = overview.json().features.find((f: { id: string }) => f.id === '350206004').geometry;
    expect(islet.type).toMatch(/Polygon$/);
    expect(coordinates(islet).length / 2).toBeGreaterThanOrEqual(4);
    expect(coordinates(overview.json().features[2].geometry).every(Number.isInteger)).toBe(true);

    const tags = [full, overview, street].map((r) => String(r.headers.etag));
    expect(new Set(tags).size).toBe(3);
    const again = await call('dianqian', 'GET', '/api/map/towns?z=0', undefined, { 'if-none-match': tags[1] });
    expect(again.statusCode).toBe(304);
    // the full layer's tag does not stand for the overview
    expect((await call('ana', 'GET', '/api/map/towns?z=0', undefined, { 'if-none-match': tags[0] })).statusCode).toBe(
      200,
    );
    const refused = await call('ana', 'GET', '/api/map/towns?z=9');
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toMatch(/\bz\b/);
  });

  it('serves an OpenAPI description of exactly the routes the server has', async () => {
    // the document lists every /api/ route the server registers (only the web app's files are hidden)
    const routes: string[] = [];
    const doc = (await call(null, 'GET', '/api/openapi.json')).json();
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(methods)) routes.push(`${method.toUpperCase()} ${path}`);
    }
    const expected = [
      'GET /api/health',
      'POST /api/login',
      'GET /api/me',
      'POST /api/logout',
      'GET /api/openapi.json',
      'GET /api/patches',
      'POST /api/patches',
      'GET /api/meta',
      'GET /api/patches/{code}',
      'POST /api/patches/{code}/notes',
      ...ACTION_NAMES.map((a) => `POST /api/patches/{code}/actions/${a}`),
      'GET /api/map/patches',
      'GET /api/map/config',
      'GET /api/map/towns',
      'GET /api/map/tiles/{month}/{z}/{x}/{y}',
      'GET /api/patches/{code}/chips/{which}',
      'POST /api/patches/{code}/evidence',
      'GET /api/evidence/{id}',
      'GET /api/evidence/{id}/stamped.jpg',
      'GET /api/evidence/{id}/thumb.jpg',
      'GET /api/export',
      'GET /api/reports/monthly',
      'GET /api/reports/monthly.xlsx',
      'GET /api/reports/yearly',
      'GET /api/reports/yearly.xlsx',
      'GET /api/reports/yearly.pdf',
      'GET /api/reports/board',
      'GET /api/reports/trend',
      'GET /api/todo',
      'GET /api/batches',
      'GET /api/batches/{id}',
      'GET /api/users',
      'POST /api/users',
      'POST /api/users/{username}/tokens',
      'POST /api/users/{username}/revoke',
      'POST /api/users/{username}/disable',
      'POST /api/users/{username}/enable',
      'POST /api/users/{username}/password',
      'GET /api/models',
      'POST /api/models/{id}/promote',
      'POST /api/models/rollback',
      'GET /api/calendar',
      'POST /api/calendar/years',
      'POST /api/patches/actions/{action}',
      'GET /api/notify/channels',
      'POST /api/notify/channels',
      'PATCH /api/notify/channels/{id}',
      'POST /api/notify/channels/{id}/test',
      'GET /api/notify/outbox',
    ];
    expect(routes.sort()).toEqual(expected.sort());
    for (const route of expected) {
      const [method, path] = route.split(' ');
      expect(h.app.hasRoute({ method: method as 'GET' | 'POST', url: path.replace(/\{(\w+)\}/g, ':$1') }), route).toBe(
        true,
      );
    }
    expect(doc.openapi).toBe('3.1.0');
    // verify's body has one variant per result, each naming the fields it needs
    const verify = doc.paths['/api/patches/{code}/actions/verify'].post.requestBody.content['application/json'].schema;
    const variants = verify.oneOf as {
      properties: Record<string, { const?: string; enum?: string[] }>;
      required: string[];
    }[];
    expect(variants.flatMap((v) => v.properties.result.enum ?? [v.properties.result.const])).toEqual([
      'illegal',
      'legal',
      'false_change',
      'pre_existing',
    ]);
    expect(variants.map((v) => v.required)).toEqual([['result', 'violation'], ['result', 'permit_ref'], ['result']]);
    // every route but the open three needs the bearer token; every query parameter is described
    for (const route of expected) {
      const [method, path] = route.split(' ');
      const op = doc.paths[path][method.toLowerCase()];
      expect(op.summary, route).toBeTruthy();
      expect(op.security ?? null, route).toEqual(
        ['/api/login', '/api/health', '/api/openapi.json'].includes(path) ? null : [{ bearer: [] }],
      );
    }
    expect(doc.paths['/api/patches'].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['month', 'town', 'status', 'bbox', 'limit', 'offset']),
    );
    expect(
      doc.paths['/api/export'].get.parameters.find((p: { name: string }) => p.name === 'format').schema.enum,
    ).toContain('gpkg');
  });

  it("types the web client's calls with the schemas the server answers with (api/routes.ts)", async () => {
    const doc = (await call(null, 'GET', '/api/openapi.json')).json();
    const bodies = { ...responseBodies, ...reportBodies } as Record<string, unknown>;
    /** A JSON Schema without what only describes it, keys sorted: two schemas of one shape compare equal. */
    const shape = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(shape)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .filter(([k]) => !['description', '$schema', 'title', 'examples'].includes(k))
                // the OpenAPI writer spells a constant as a one-value enum
                .map(([k, x]): [string, unknown] => (k === 'const' ? ['enum', [x]] : [k, x]))
                .sort(([a], [b]) => a.localeCompare(b))
                .map(([k, x]) => [k, shape(x)]),
            )
          : v;
    // each branch of the table: `R extends '<path>'` (or a template with ${string}) `? <answer>`, first match wins
    const source = readFileSync(join(import.meta.dirname, '..', 'api', 'routes.ts'), 'utf8');
    const table = (name: string) =>
      source.slice(source.indexOf(`type ${name}<`), source.indexOf(';', source.indexOf(`type ${name}<`)));
    const branches = (name: string) =>
      [...table(name).matchAll(/R extends (?:'([^']+)'|`([^`]+)`)\s*\?\s*(?:Out<typeof (\w+)>|(\w+))/g)].map((m) => ({
        pattern: new RegExp(
          `^${(m[1] ?? m[2]).replace(/\$\{'([^}]+)'\}/g, (_, alts: string) => `(${alts.replace(/'|\s/g, '')})`).replace(/\$\{string\}/g, '.+')}$`,
        ),
        answer: m[3] ?? m[4],
      }));
    let checked = 0;
    const wrong: string[] = [];
    for (const [method, name] of [
      ['get', 'GetAnswer'],
      ['post', 'PostAnswer'],
    ] as const) {
      const list = branches(name);
      expect(list.length, name).toBeGreaterThan(5);
      for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
        const op = ops[method];
        if (!op) continue;
        // the client asks for /api/patches/350206-202403-0002: the path with each {name} filled in
        const asked = path.replace(/\{(\w+)\}/g, (_, k: string) => (k === 'action' ? 'dispatch' : `x-${k}`));
        const branch = list.find((b) => b.pattern.test(asked));
        const served = (op.responses?.['200'] ?? op.responses?.['201'])?.content?.['application/json']?.schema;
        if (!branch || branch.answer === 'unknown') {
          // not in the table: the client gets `unknown`, fine for files; a JSON answer must be listed
          if (served !== undefined && Object.keys(shape(served) as object).length > 0)
            wrong.push(`${method} ${path} answers JSON but api/routes.ts does not name it`);
          continue;
        }
        const schema = bodies[branch.answer];
        expect(schema, `${branch.answer} (api/routes.ts) is no schema of api/`).toBeInstanceOf(z.ZodType);
        expect(served, `${method} ${path}: no JSON answer, api/routes.ts says ${branch.answer}`).toBeTruthy();
        expect(shape(served), `${method} ${path} answers other than ${branch.answer}`).toEqual(
          shape(
            z.toJSONSchema(schema as z.ZodType, {
              io: 'output',
              unrepresentable: 'any',
              // as the OpenAPI writer renders a date the server sends: an ISO 8601 string
              override: (ctx) => {
                if (ctx.zodSchema._zod.def.type === 'date')
                  Object.assign(ctx.jsonSchema, { type: 'string', format: 'date-time' });
              },
            }),
          ),
        );
        checked++;
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });
});
