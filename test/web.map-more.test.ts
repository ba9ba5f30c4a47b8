import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { buildWebAssets } from '../server/web.ts';
import { createUser } from '../store/users.ts';
import { testWorkflowEnv } from './helpers/api.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { CHROMIUM, launchChromium } from './helpers/pages.ts';

/**
 * A month with more patches than the map fetches at once (1,000): the list says how many it shows of
 * how many, and 显示更多 fetches the next page onto the list and the map — by the code it stopped at
 * in code order, by count in another order — until every patch is there, each once.
 */
describe.skipIf(!existsSync(CHROMIUM))('the web map, a page at a time', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  const env = testWorkflowEnv(() => '2024-03-20');

  beforeAll(async () => {
    run = await freshRun(fixturesDir);
    await runBatch(run.db, run.config, '2024-03', '2024-02');
    // 1,000 more in the month: the batch's five again, 200 times each, a few metres apart
    await run.db.raw(
      `insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, grid_code,
                          grid_name, area_m2, farmland_m2, ecological_m2, water_m2, mean_prob, source_tiles, model_name,
                          model_version, status, geom, centroid, class, building_relation, registered_building_m2,
                          extension_m2)
       select patch_code(p.district_code, p.month, 100 + n), p.month, 100 + n, p.batch_id, p.baseline_month,
              p.district_code, p.town_code, p.town_name, p.grid_code, p.grid_name, p.area_m2 + n % 97, p.farmland_m2,
              p.ecological_m2, p.water_m2, p.mean_prob, p.source_tiles, p.model_name, p.model_version, p.status,
              ST_Translate(p.geom, (n % 40) * 3, (n / 40) * 3), ST_Translate(p.centroid, (n % 40) * 3, (n / 40) * 3),
              p.class, p.building_relation, p.registered_building_m2, p.extension_m2
       from (select p.*, row_number() over (order by p.code, g) as n
             from patch p cross join generate_series(1, 200) g) p`,
    );
    expect(Number((await run.db('patch').count({ n: '*' }))[0].n)).toBe(1005);
    await createUser(run.db, { username: 'ana', role: 'analyst', password: 'analyst-pass' });
    const web = await buildWebAssets(join(run.config.dataDir, 'web'));
    app = await buildServer({ db: run.db, config: run.config, env, web });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await cleanup(run.db, run.config);
  });

  it('shows the first 1,000 and fetches the rest onto the list and the map, in either order', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(base);
    await page.fill('input[name=username]', 'ana');
    await page.fill('input[name=password]', 'analyst-pass');
    await page.click('button[type=submit]');
    // an analyst lands on the map or the to-do
    await page.waitForSelector('#todo-table tr[data-code], #todo-empty, #patch-table tbody tr', { timeout: 60_000 });
    const all = (await run.db('patch').orderBy('code').pluck('code')).map(String);
    for (const sort of ['code', 'area_m2']) {
      await page.goto(`${base}#/map?month=2024-03&sort=${sort}`);
      await expect.poll(() => page.$$eval('#patch-table tr[data-code]', (r) => r.length)).toBe(1000);
      expect(await page.textContent('#list-more')).toMatch(/1000 \/ 1005/);
      const asked: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/api/map/patches')) asked.push(r.url());
      });
      await page.click('#list-more');
      await expect.poll(() => page.$$eval('#patch-table tr[data-code]', (r) => r.length)).toBe(1005);
      expect(await page.$('#list-more')).toBeNull();
      // each patch once, and the page asked from where it stopped
      const codes = await page.$$eval('#patch-table tr[data-code]', (rows) =>
        rows.map((r) => (r as HTMLElement).dataset.code!),
      );
      expect([...codes].sort()).toEqual(all);
      expect(asked.at(-1)).toMatch(sort === 'code' ? /after=350206-202403-/ : /offset=1000/);
      page.removeAllListeners('request');
    }
    await page.close();
  });
});
