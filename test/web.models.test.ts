import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { buildWebAssets } from '../server/web.ts';
import { createUser } from '../store/users.ts';
import { evaluateModel } from '../training/evaluate.ts';
import { runningModel } from '../store/models.ts';
import type { ModelEnv } from '../training/models.ts';
import { testWorkflowEnv } from './helpers/api.ts';
import { monthOfReportedMisses } from './helpers/reported.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { CHROMIUM, inChinese, launchChromium } from './helpers/pages.ts';

const SHOTS = join('out', 'web-screenshots');

/**
 * 模型 (issue 32): the register on a page for supervisors (read) and admins (promote, roll back). The
 * fixtures' model was evaluated on a month whose only verdicts are the towns' reports of what the running
 * (blind) model missed; the page shows both models' figures and the rule's verdict, and the admin promotes it.
 */
describe.skipIf(!existsSync(CHROMIUM))('the model register page', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let work: string;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    work = mkdtempSync(join(tmpdir(), 'tuban-web-models-'));
    run = await freshRun(fixturesDir);
    const env: ModelEnv = { db: run.db, config: { ...run.config, TUBAN_MODEL_VALIDATION: '' }, actor: 'test' };
    const { fixtures } = await monthOfReportedMisses(run, env, fixturesDir, work);
    await evaluateModel(env, { month: '2024-03', id: fixtures.id });
    await createUser(run.db, { username: 'sup', role: 'supervisor', password: 'supervisor-pass' });
    await createUser(run.db, { username: 'root', role: 'admin', password: 'admin-pass-01' });
    const web = await buildWebAssets(join(run.config.dataDir, 'web'));
    app = await buildServer({ db: run.db, config: run.config, env: testWorkflowEnv(() => '2024-03-20'), web });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await cleanup(run.db, run.config);
    rmSync(work, { recursive: true, force: true });
  });

  async function signIn(page: Page, user: string, password: string) {
    await page.goto(base);
    await page.fill('input[name=username]', user);
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForSelector('#nav a');
  }

  it('shows each model’s figures to a supervisor, and lets an admin promote and roll back', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(page, 'sup', 'supervisor-pass');
    await page.click('a[href="#/models"]');
    await page.waitForSelector('#models tr[data-model]');
    const candidate = page.locator('#models tr[data-status=candidate]');
    expect(await candidate.textContent()).toMatch(/cva-baseline 1\.0\.0/);
    expect(await candidate.textContent()).toMatch(/留出月份 2024-03/);
    // the blind model found none of the two reported misses; this one both
    expect(await candidate.textContent()).toMatch(/得分 0\.000：查出 0\/2（其中上报漏报 0\/2）/);
    expect(await candidate.textContent()).toMatch(/得分 1\.000：查出 2\/2（其中上报漏报 2\/2），误报 0\/2/);
    expect(await candidate.locator('[data-verdict]').getAttribute('data-verdict')).toBe('promote');
    expect(await page.locator('#models tr[data-status=running]').textContent()).toMatch(/blind.*运行中/s);
    expect(await page.$('[data-do=promote]')).toBeNull(); // supervisors read
    await inChinese(page, 'the model register');
    await page.context().clearCookies();
    await page.evaluate(() => localStorage.clear());

    await signIn(page, 'root', 'admin-pass-01');
    await page.goto(`${base}#/models`);
    await page.waitForSelector('#models tr[data-model]');
    await page.screenshot({ path: join(SHOTS, '10-admin-models.png'), fullPage: true });
    await page.click('#models tr[data-status=candidate] [data-do=promote]');
    await expect.poll(() => page.textContent('#models-msg')).toMatch(/cva-baseline 1\.0\.0 已启用/);
    expect((await runningModel(run.db))?.version).toBe('1.0.0');
    // rolled back, with the reason in the history
    await page.fill('#rollback-form input[name=reason]', '镇街反映漏报增多');
    await page.click('#rollback-form [data-do=rollback]');
    await expect.poll(() => page.textContent('#models-msg')).toMatch(/已回滚，现在运行 cva-baseline blind/);
    expect((await runningModel(run.db))?.version).toBe('blind');
    const ev = await run.db('detector_model_event').where({ action: 'rolled_back' }).first();
    expect(ev.detail).toMatchObject({ reason: '镇街反映漏报增多' });
    await page.close();
  });

  it('says so when the register is empty (no batch has run, no model command)', async () => {
    const empty = await freshRun(fixturesDir);
    let server: FastifyInstance | undefined;
    try {
      await createUser(empty.db, { username: 'sup', role: 'supervisor', password: 'supervisor-pass' });
      const web = await buildWebAssets(join(empty.config.dataDir, 'web'));
      server = await buildServer({ db: empty.db, config: empty.config, env: testWorkflowEnv(() => '2024-03-20'), web });
      const at = await server.listen({ port: 0, host: '127.0.0.1' });
      const page = await browser.newPage({ viewport: { width: 375, height: 812 } });
      await page.goto(at);
      await page.fill('input[name=username]', 'sup');
      await page.fill('input[name=password]', 'supervisor-pass');
      await page.click('button[type=submit]');
      await page.waitForSelector('#nav a');
      await page.goto(`${at}#/models`);
      await expect.poll(() => page.textContent('#models')).toMatch(/模型登记簿为空/);
      expect(await page.$('#models tr[data-model]')).toBeNull();
      await inChinese(page, 'the empty model register');
      await page.screenshot({ path: join(SHOTS, '10b-models-empty-phone.png'), fullPage: true });
      await page.close();
    } finally {
      await server?.close();
      await cleanup(empty.db, empty.config);
    }
  });
});
