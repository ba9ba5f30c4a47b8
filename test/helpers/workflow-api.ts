import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, expect, inject } from 'vitest';
import { buildServer } from '../../server/app.ts';
import { createUser, issueToken } from '../../store/users.ts';
import type { WorkflowEnv } from '../../workflow/env.ts';
import { apiCaller, testWorkflowEnv } from './api.ts';
import { runBatch } from './batch.ts';
import { JPEG } from './hostile.ts';
import { freshRun, type Run } from './run.ts';
import { cleanup } from './services.ts';

// Patches of the fixture batch: town 350206001 (殿前) has 0002, 0003, 0005; 350206002 (禾山) has 0001, 0004.
export const OWN = '350206-202403-0002';
export const OTHER = '350206-202403-0001';

export interface WorkflowScene {
  run: Run;
  app: FastifyInstance;
  today: string;
  token: Record<string, string>;
  env: WorkflowEnv;
  call: ReturnType<typeof apiCaller>;
  /** Uploads a small photo (no EXIF) to a patch as `who`; expects 201. */
  photo(who: string, code: string, filename?: string): Promise<void>;
  /** Takes a 殿前 patch the shortest way from detected to closed: dispatch, verify illegal, demolish, evidence, report, close. */
  walkToClosed(code: string): Promise<void>;
  /** The April batch against February, after 0005 was demolished and closed: 0005's building comes back as a rebuilt patch. */
  rebuiltPatch(): Promise<{ code: string; summary: Awaited<ReturnType<typeof runBatch>> }>;
  /** Two boxes that cut a patch across the middle of its bounding box, in lon/lat. */
  halves(code: string): Promise<{ patch: any; left: unknown; right: unknown; whole: unknown }>;
}

/**
 * The workflow API on real PostGIS, set up by the calling describe: every scenario starts from its
 * own fresh schema with the fixture batch's five patches, today on 2024-03-18, users of each role
 * with tokens (the analyst's from a real login) and a server with a 1 KB evidence limit; none depends
 * on what another left behind, in any order (vitest --sequence.shuffle).
 */
export function workflowApi(): WorkflowScene {
  const fixturesDir = inject('fixturesDir');
  const h = {
    today: '2024-03-18',
    token: {} as Record<string, string>,
  } as WorkflowScene;
  h.env = testWorkflowEnv(() => h.today);
  h.call = apiCaller(() => h.app, h.token);
  beforeEach(async () => {
    h.today = '2024-03-18';
    h.run = await freshRun(fixturesDir);
    await runBatch(h.run.db, h.run.config, '2024-03', '2024-02');
    await createUser(h.run.db, { username: 'ana', role: 'analyst', password: 'analyst-pass' });
    await createUser(h.run.db, { username: 'sup', role: 'supervisor' });
    await createUser(h.run.db, { username: 'adm', role: 'admin' });
    await createUser(h.run.db, {
      username: 'dianqian',
      role: 'town',
      townCode: '350206001',
      displayName: '殿前街道办',
    });
    await createUser(h.run.db, { username: 'heshan', role: 'town', townCode: '350206002' });
    for (const u of ['sup', 'adm', 'dianqian', 'heshan']) h.token[u] = (await issueToken(h.run.db, u)).token;
    h.app = await buildServer({ db: h.run.db, config: h.run.config, env: h.env, evidenceMaxBytes: 1024 });
    const login = await h.call(null, 'POST', '/api/login', { username: 'ana', password: 'analyst-pass' });
    expect(login.statusCode).toBe(200);
    h.token.ana = login.json().token;
  });
  afterEach(async () => {
    await h.app?.close();
    await cleanup(h.run.db, h.run.config);
  });

  h.photo = async function photo(who: string, code: string, filename = 'photo.jpg') {
    const up = await h.call(who, 'POST', `/api/patches/${code}/evidence?filename=${filename}`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(up.statusCode, up.body).toBe(201);
  };

  h.walkToClosed = async function walkToClosed(code: string) {
    const steps: [string, string, Record<string, unknown>][] = [
      ['ana', 'dispatch', {}],
      ['dianqian', 'verify', { result: 'illegal', violation: 'construction' }],
      ['dianqian', 'rectify', { measure: 'demolish' }],
    ];
    for (const [who, action, body] of steps) {
      // a verdict of 违法 stands on a photo of the site
      if (action === 'verify') await h.photo('dianqian', code, 'site.jpg');
      const r = await h.call(who, 'POST', `/api/patches/${code}/actions/${action}`, body);
      expect(r.statusCode, `${action}: ${r.body}`).toBe(200);
    }
    const up = await h.call('dianqian', 'POST', `/api/patches/${code}/evidence?filename=done.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(up.statusCode, up.body).toBe(201);
    expect((await h.call('dianqian', 'POST', `/api/patches/${code}/actions/report_rectified`, {})).statusCode).toBe(
      200,
    );
    expect((await h.call('sup', 'POST', `/api/patches/${code}/actions/close`, {})).json().status).toBe('closed');
  };

  h.rebuiltPatch = async function rebuiltPatch(): Promise<{
    code: string;
    summary: Awaited<ReturnType<typeof runBatch>>;
  }> {
    await h.walkToClosed('350206-202403-0005');
    const { copyMonth } = await import('./batch.ts');
    const { registerImagery } = await import('../../imagery/register.ts');
    const dir = `${h.run.config.dataDir}/2024-04`;
    copyMonth(fixturesDir, '2024-03', dir);
    await registerImagery(h.run.db, h.run.config, '2024-04', [dir]);
    const summary = await runBatch(h.run.db, h.run.config, '2024-04', '2024-02'); // against February: the buildings are "new" again
    return { code: (await h.run.db('patch').where({ month: '2024-04' }).first()).code, summary };
  };

  h.halves = async function halves(code: string) {
    const p = (await h.call('ana', 'GET', `/api/patches/${code}`)).json();
    const ring = (
      p.geometry.type === 'MultiPolygon' ? p.geometry.coordinates[0][0] : p.geometry.coordinates[0]
    ) as number[][];
    const xs = ring.map((c) => c[0]),
      ys = ring.map((c) => c[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const xm = (x0 + x1) / 2;
    const box = (a: number, b: number) => ({
      type: 'Polygon',
      coordinates: [
        [
          [a, y0 - 1e-4],
          [b, y0 - 1e-4],
          [b, y1 + 1e-4],
          [a, y1 + 1e-4],
          [a, y0 - 1e-4],
        ],
      ],
    });
    return { patch: p, left: box(x0 - 1e-4, xm), right: box(xm, x1 + 1e-4), whole: box(x0 - 1e-4, x1 + 1e-4) };
  };

  return h;
}
