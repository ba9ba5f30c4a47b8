import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { createLogger } from '../../core/log.ts';
import { buildServer } from '../../server/app.ts';
import { createUser, issueToken } from '../../store/users.ts';
import type { WorkflowEnv } from '../../workflow/env.ts';
import { apiCaller, testWorkflowEnv } from './api.ts';
import { runBatch } from './batch.ts';
import { freshRun, type Run } from './run.ts';
import { cleanup } from './services.ts';

/** A JPEG of 22 bytes: the smallest file the evidence store takes as a photo. */
export const JPEG = Buffer.from([
  0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9,
]);

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** Town 350206001 (殿前) has 0002, 0003, 0005 of 2024-03; 350206002 (禾山) has 0001, 0004. */
export const OWN = '350206-202403-0002';

/**
 * The security review's scene (issue 17), set up by the calling describe's beforeAll: a fresh run
 * with the March batch, one user of each role and two town users, each with a token, and the API
 * server with a log the test reads. `today` is what the workflow takes as today; a test that moves
 * it sets it back.
 */
export interface HostileScene {
  run: Run;
  app: FastifyInstance;
  today: string;
  token: Record<string, string>;
  logged: Record<string, unknown>[];
  env: WorkflowEnv;
  call: ReturnType<typeof apiCaller>;
  toIllegal(code: string, town: string): Promise<void>;
}

export function hostileServer(): HostileScene {
  const h: HostileScene = {
    run: undefined as unknown as Run,
    app: undefined as unknown as FastifyInstance,
    today: '2024-03-18',
    token: {} as Record<string, string>,
    logged: [] as Record<string, unknown>[],
    env: testWorkflowEnv(() => h.today),
    call: undefined as unknown as ReturnType<typeof apiCaller>,
    /** Dispatch, verify illegal: the patch is ready for rectify. */
    async toIllegal(code: string, town: string) {
      expect((await h.call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).statusCode).toBe(200);
      const up = await h.call(town, 'POST', `/api/patches/${code}/evidence?filename=site.jpg`, JPEG, {
        'content-type': 'image/jpeg',
      });
      expect(up.statusCode, up.body).toBe(201);
      const v = await h.call(town, 'POST', `/api/patches/${code}/actions/verify`, {
        result: 'illegal',
        violation: 'construction',
      });
      expect(v.statusCode, v.body).toBe(200);
    },
  };
  h.call = apiCaller(() => h.app, h.token);
  beforeAll(async () => {
    h.run = await freshRun(inject('fixturesDir'));
    await runBatch(h.run.db, h.run.config, '2024-03', '2024-02');
    await createUser(h.run.db, { username: 'ana', role: 'analyst' });
    await createUser(h.run.db, { username: 'sup', role: 'supervisor' });
    await createUser(h.run.db, { username: 'dianqian', role: 'town', townCode: '350206001' });
    await createUser(h.run.db, { username: 'heshan', role: 'town', townCode: '350206002' });
    await createUser(h.run.db, { username: 'root', role: 'admin' });
    for (const u of ['ana', 'sup', 'dianqian', 'heshan', 'root']) h.token[u] = (await issueToken(h.run.db, u)).token;
    h.app = await buildServer({
      db: h.run.db,
      config: h.run.config,
      env: h.env,
      log: createLogger('error', (l) => h.logged.push(JSON.parse(l))),
    });
    // a route that fails the way a bug would, to see what a 500 leaves behind
    h.app.get('/api/test-crash', async () => {
      throw new Error('a bug');
    });
  });
  afterAll(async () => {
    await h.app?.close();
    if (h.run) await cleanup(h.run.db, h.run.config);
  });
  return h;
}
