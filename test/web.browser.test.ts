import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { label } from '../i18n/index.ts';
import { buildServer } from '../server/app.ts';
import { buildWebAssets } from '../server/web.ts';
import { objectStore } from '../store/objects.ts';
import { JPEG } from './helpers/hostile.ts';
import { addEvidence } from '../store/evidence.ts';
import { createUser, type User } from '../store/users.ts';
import { applyAction } from '../store/workflow.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import { redisConnection } from '../workers/queues.ts';
import { loadCalendar } from '../workflow/calendar.ts';
import { DEFAULT_POLICY } from '../workflow/lifecycle.ts';
import { registerImagery } from '../imagery/register.ts';
import { copyMonth, runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { CHROMIUM, launchChromium, fitsTheScreen, inChinese, thumbSized } from './helpers/pages.ts';

/** Screenshots for review (out/ is git-ignored). */
const SHOTS = join('out', 'web-screenshots');

/**
 * The web app in a real browser (Debian's chromium through playwright-core), against the real
 * server, PostGIS and Redis: a town user signs in, sees only the town, verifies a patch and sees
 * the history update; a supervisor sees the board; an analyst watches a batch run live. The browser
 * reads zh-CN, the default: the pages and the server's refusals (i18n/messages.zh-CN.ts) are in Chinese.
 */
describe.skipIf(!existsSync(CHROMIUM))('web map in headless Chromium', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  let app: FastifyInstance;
  let redis: Redis;
  let browser: Browser;
  let base: string;
  const env: WorkflowEnv = {
    calendar: loadCalendar('config/calendar.cn.json'),
    policy: DEFAULT_POLICY,
    today: () => '2024-03-20',
  };
  let analyst: User;
  let clerk: User;
  const townCodes: Record<string, string[]> = {};

  beforeAll(async () => {
    run = await freshRun(fixturesDir);
    await runBatch(run.db, run.config, '2024-03', '2024-02');
    analyst = await createUser(run.db, { username: 'ana', role: 'analyst', password: 'analyst-pass' });
    await createUser(run.db, { username: 'sup', role: 'supervisor', password: 'supervisor-pass' });
    await createUser(run.db, { username: 'root', role: 'admin', password: 'admin-pass-0001' });
    clerk = await createUser(run.db, {
      username: 'dianqian',
      role: 'town',
      townCode: '350206001',
      displayName: '殿前街道办',
      password: 'town-office-pass',
    });
    for (const p of await run.db('patch').select('code', 'town_code').orderBy('code')) {
      (townCodes[p.town_code] ??= []).push(p.code);
      await applyAction(run.db, env, analyst, p.code, 'dispatch', {});
    }
    redis = redisConnection(run.config);
    const web = await buildWebAssets(join(run.config.dataDir, 'web'));
    app = await buildServer({ db: run.db, config: run.config, env, web, redis });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
    mkdirSync(SHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    redis?.disconnect();
    await cleanup(run.db, run.config);
  });

  async function signIn(username: string, password: string): Promise<Page> {
    return signInAt(username, password, 1400, 900);
  }

  it("signs a town user in and shows only that town, on a map over the month's imagery", async () => {
    const tiles: number[] = [];
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('response', (r) => {
      if (r.url().includes('/api/map/tiles/')) tiles.push(r.status());
    });
    await page.goto(base);
    await page.fill('input[name=username]', 'dianqian');
    await page.fill('input[name=password]', 'wrong');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('#login-msg')).toMatch(/用户名、密码或令牌无效/);
    await page.fill('input[name=password]', 'town-office-pass');
    await page.click('button[type=submit]');
    // the landing page is the to-do list: every patch of the town waits on its verification
    await page.waitForSelector('#todo-table tr[data-code]');
    expect(page.url()).toMatch(/#\/todo$/);
    const todo = await page.$$eval('#todo-table tr[data-code]', (rows) =>
      rows.map((r) => (r as HTMLElement).dataset.code),
    );
    const waiting = await run
      .db('patch')
      .where({ town_code: '350206001' })
      .whereIn('status', ['dispatched', 'illegal', 'rectifying'])
      .pluck('code');
    expect(todo.map(String).sort()).toEqual(waiting.map(String).sort());
    expect(await page.textContent('#todo-table')).toMatch(/剩 \d+ 个工作日/);
    await page.screenshot({ path: join(SHOTS, '0-town-todo.png') });
    await page.click('a[href="#/map"]');
    await page.waitForSelector('#patch-table tbody tr');
    const codes = await page.$$eval('#patch-table tbody tr', (rows) =>
      rows.map((r) => (r as HTMLElement).dataset.code),
    );
    expect(codes.map(String).sort()).toEqual(townCodes['350206001'].map(String).sort());
    const towns = await page.$$eval('#patch-table tbody tr td:nth-child(2)', (cells) => [
      ...new Set(cells.map((c) => c.textContent)),
    ]);
    expect(towns).toEqual(['殿前街道']);
    expect(await page.isDisabled('select[name=town]')).toBe(true);
    // fixed to the clerk's town, by its name (its code cut the field on a phone)
    expect((await page.textContent('select[name=town] option:checked'))?.trim()).toBe('殿前街道');
    expect(await page.textContent('#who-town')).toBe('殿前街道'); // the town's name, not its code
    // imagery tiles drawn from the GeoTIFFs, and the patch outlines over them
    await expect.poll(() => tiles.filter((s) => s === 200).length, { timeout: 60_000 }).toBeGreaterThan(0);
    await page.waitForTimeout(1500);
    const painted = await page.evaluate(() => {
      const canvases = [...document.querySelectorAll('#map canvas')] as HTMLCanvasElement[];
      return canvases.some((c) => {
        const ctx = c.getContext('2d');
        if (!ctx || !c.width) return false;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let opaque = 0;
        for (let i = 3; i < d.length; i += 4 * 97) if (d[i] > 0) opaque++;
        return opaque > 100;
      });
    });
    expect(painted).toBe(true);
    await page.screenshot({ path: join(SHOTS, '1-town-map.png') });
    // the town's month as a spreadsheet, from the page
    const [xlsx] = await Promise.all([page.waitForEvent('download'), page.click('[data-download=xlsx]')]);
    expect(xlsx.suggestedFilename()).toBe('350206001_殿前街道_2024-03.xlsx');
    const saved = join(run.config.dataDir, 'download.xlsx');
    await xlsx.saveAs(saved);
    expect(readFileSync(saved).subarray(0, 2).toString()).toBe('PK'); // an OOXML zip
    // the swipe moves the boundary between before and after
    await page.fill('#swipe', '20');
    expect(await page.getAttribute('.swipe-line', 'style')).toContain('left:20%'); // the divider follows
    // a scale bar, the pointer's coordinates and the town boundaries over the imagery
    expect(await page.isVisible('.ol-scale-line')).toBe(true);
    await page.mouse.move(900, 400);
    await expect.poll(() => page.textContent('.coordinates')).toMatch(/^1\d{2}\.\d{6}, 2\d\.\d{6} · EPSG:4548/);
    await expect
      .poll(() =>
        page.evaluate(() => {
          const map = (window as unknown as { __tubanMap: { getLayers(): { getArray(): unknown[] } } }).__tubanMap;
          return map
            .getLayers()
            .getArray()
            .map((l) => (l as { getSource(): { getFeatures?(): unknown[] } }).getSource().getFeatures?.().length ?? -1);
        }),
      )
      .toContain(2); // the two towns' boundaries
    await page.screenshot({ path: join(SHOTS, '2-town-map-swipe.png') });
    // a patch row opens with Enter
    await page.focus('#patch-table tbody tr');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#patch-code');
    await page.goBack();
    // another town's patch is not found, as in the API
    const elsewhere = townCodes['350206002'][0];
    await page.goto(`${base}/#/patch/${encodeURIComponent(elsewhere)}`);
    await expect.poll(() => page.textContent('#main')).toContain(`图斑 ${elsewhere} 不存在`);
    await page.close();
  });

  it('lets the town verify a dispatched patch and shows the history update', async () => {
    const page = await signIn('dianqian', 'town-office-pass');
    const code = townCodes['350206001'][0];
    await page.click(`#todo-table tr[data-code="${code}"]`);
    await page.waitForSelector('#patch-code');
    expect(await page.textContent('#patch-code')).toContain('已下发');
    await expect
      .poll(() => page.$eval('#chip-after', (img) => (img as HTMLImageElement).naturalWidth), { timeout: 60_000 })
      .toBeGreaterThan(100);
    await expect
      .poll(() => page.$eval('#chip-before', (img) => (img as HTMLImageElement).naturalWidth), { timeout: 60_000 })
      .toBeGreaterThan(100);
    const historyRows = await page.$$eval('#history tr', (r) => r.length);
    // buttons for the town's moves only: verify, not dispatch or close
    const buttons = await page.$$eval('[data-open]', (b) => b.map((x) => (x as HTMLElement).dataset.open));
    expect(buttons).toContain('verify');
    expect(buttons).not.toContain('close');
    await page.click('[data-open=verify]');
    // nothing chosen for the clerk: the result starts empty, the button off, no field that does not apply yet
    const f = 'form.actionform';
    expect(await page.$eval(`${f} select[name=result]`, (s) => (s as HTMLSelectElement).value)).toBe('');
    expect(await page.isDisabled(`${f} button[type=submit]`)).toBe(true);
    expect(await page.isVisible(`${f} [data-field=permit_ref]`)).toBe(false);
    expect(await page.isVisible(`${f} [data-field=violation]`)).toBe(false);
    expect(await page.textContent(f)).not.toMatch(/permit_ref|violation|result/); // labels without the API's names
    // legal asks for the permit reference (and only that), the button waits for it
    await page.selectOption(`${f} select[name=result]`, 'legal');
    expect(await page.isVisible(`${f} [data-field=permit_ref]`)).toBe(true);
    expect(await page.isVisible(`${f} [data-field=violation]`)).toBe(false);
    expect(await page.isDisabled(`${f} button[type=submit]`)).toBe(true);
    await page.fill(`${f} input[name=permit_ref]`, '   ');
    expect(await page.isDisabled(`${f} button[type=submit]`)).toBe(true); // spaces are not a reference
    await page.click('[data-cancel]');
    await page.click('[data-open=verify]');
    await page.selectOption('form.actionform select[name=result]', 'illegal');
    expect(await page.$eval(`${f} select[name=violation]`, (s) => (s as HTMLSelectElement).value)).toBe('');
    expect(await page.isDisabled(`${f} button[type=submit]`)).toBe(true);
    await page.selectOption('form.actionform select[name=violation]', 'construction');
    await page.fill('form.actionform input[name=note]', '现场核实为新建厂房');
    await page.click('form.actionform button[type=submit]');
    // without a photo of the site the verdict is refused, in words that say what to do
    await expect
      .poll(() => page.textContent('#action-msg'))
      .toContain('认定违法须有 1 张现场核查照片，现有 0 张：请先在现场用「拍照上传」拍摄');
    await page.setInputFiles('label.camera input', { name: 'site.jpg', mimeType: 'image/jpeg', buffer: JPEG });
    await expect.poll(() => page.textContent('#evidence [data-stage=verify]')).toContain('site.jpg');
    if (!(await page.isVisible('form.actionform'))) await page.click('[data-open=verify]');
    await page.selectOption('form.actionform select[name=result]', 'illegal');
    await page.selectOption('form.actionform select[name=violation]', 'construction');
    await page.fill('form.actionform input[name=note]', '现场核实为新建厂房');
    await page.click('form.actionform button[type=submit]');
    await expect.poll(() => page.textContent('#action-msg')).toMatch(/核查 ✓/);
    expect(await page.textContent('#patch-code')).toContain('违法');
    expect(await page.$$eval('#history tr', (r) => r.length)).toBe(historyRows + 2); // the photo, the verdict
    expect(await page.textContent('#history')).toContain('dianqian');
    // the history in words: a sentence per event, no raw keys or hashes for a town clerk
    const history = await page.textContent('#history');
    expect(history).toContain('外业核查：违法，违法建设。备注：现场核实为新建厂房');
    expect(history).toMatch(/下发镇街，核查期限 2024-03-\d\d/);
    expect(history).not.toMatch(/result:|verify_due|sha256|详情/);
    const row = await run.db('patch').where({ code }).first('status', 'violation');
    expect(row).toEqual({ status: 'illegal', violation: 'construction' });
    // evidence from the page: a text file is refused with the API's reason, a photo is stored and listed
    await page.setInputFiles('#upload input[type=file]', {
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('not a photo'),
    });
    await page.click('#upload button');
    await expect.poll(() => page.textContent('#action-msg')).toMatch(/不是 JPEG、PNG 或 PDF 文件/);
    // a photo over the limit is refused on the phone, the limit said, before it crosses the network
    await page.setInputFiles('#upload input[type=file]', {
      name: 'big.jpg',
      mimeType: 'image/jpeg',
      buffer: Buffer.alloc(21 * 1024 * 1024, 1),
    });
    await page.click('#upload button');
    await expect.poll(() => page.textContent('#action-msg')).toMatch(/这张照片有 21 MB，照片不能超过 20 MB/);
    const photo = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#a33' } })
      .png()
      .toBuffer();
    await page.setInputFiles('#upload input[type=file]', {
      name: '现场照片.png',
      mimeType: 'image/png',
      buffer: photo,
    });
    await page.click('#upload button');
    await expect.poll(() => page.textContent('#evidence')).toContain('现场照片.png');
    await expect
      .poll(
        () => page.$eval('#evidence img.thumb[alt="现场照片.png"]', (img) => (img as HTMLImageElement).naturalWidth),
        {
          timeout: 30_000,
        },
      )
      .toBe(16); // the photo's thumbnail (never enlarged)
    expect(await page.textContent('#history')).toContain('上传证据'); // evidence_added, in the catalogue's words
    // the photo opens full screen on the page (not a download), and closes back to the case
    await page.click('#evidence a[data-evidence]:text("现场照片.png")');
    await expect
      .poll(() => page.$eval('#viewer img', (img) => (img as HTMLImageElement).naturalWidth), { timeout: 30_000 })
      .toBe(16);
    const shown = await page.$eval('#viewer', (v) => v.getBoundingClientRect());
    expect(shown.width).toBe(await page.evaluate(() => window.innerWidth));
    await page.keyboard.press('Escape');
    expect(await page.$('#viewer')).toBeNull();
    expect(await run.db('evidence').count('* as n').first()).toEqual({ n: '2' }); // the site photo, this one
    await page.screenshot({ path: join(SHOTS, '3-town-verified.png'), fullPage: true });
    expect((page as Page & { failures: string[] }).failures).toEqual([]);
    await page.close();
  });

  /** Signs a user in on a page of the given size; the page records script errors and failed requests. */
  async function signInAt(username: string, password: string, width: number, height: number): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height }, isMobile: width < 500, hasTouch: width < 500 });
    const failures: string[] = [];
    page.on('pageerror', (err) => failures.push(err.message));
    // a request the page itself gives up when it navigates or reloads (net::ERR_ABORTED) is no failure
    page.on('requestfailed', (r) => {
      if (r.failure()?.errorText !== 'net::ERR_ABORTED') failures.push(`${r.url()} ${r.failure()?.errorText}`);
    });
    (page as Page & { failures: string[] }).failures = failures;
    await page.goto(base);
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForSelector('#todo-table tr[data-code], #todo-empty, #patch-table tbody tr, #users');
    return page;
  }

  it("shows a town's patch list on a phone as cards that do not scroll sideways", async () => {
    const page = await signInAt('dianqian', 'town-office-pass', 375, 812);
    await page.goto(`${base}#/map?month=2024-03`);
    await page.waitForSelector('#patch-table tr[data-code]');
    await fitsTheScreen(page, 'patch list on a phone');
    await thumbSized(page, 'patch list on a phone');
    const list = await page.$eval('#list', (l) => ({ scroll: l.scrollWidth, client: l.clientWidth }));
    expect(list.scroll, 'the list scrolls sideways').toBeLessThanOrEqual(list.client);
    const cards = await page.$$eval('#patch-table tr[data-code]', (rows) =>
      rows.map((r) => {
        const box = r.getBoundingClientRect();
        const code = r.querySelector('td.code')!.getBoundingClientRect();
        const status = r.querySelector('td.status')!.getBoundingClientRect();
        return { right: box.right, height: box.height, codeTop: code.top, statusTop: status.top, text: r.textContent };
      }),
    );
    expect(cards.length).toBeGreaterThan(0);
    for (const c of cards) {
      expect(c.right, c.text ?? '').toBeLessThanOrEqual(375);
      expect(c.height).toBeGreaterThanOrEqual(44);
      expect(Math.abs(c.codeTop - c.statusTop), 'the code and its state on one line').toBeLessThan(12);
    }
    // sorting stays at hand: the headings are buttons a thumb can hit
    await page.click('#patch-table th[data-sort=area_m2]');
    await expect.poll(() => page.evaluate(() => location.hash)).toContain('sort=area_m2');
    await page.screenshot({ path: join(SHOTS, '6b-phone-list.png'), fullPage: true });
    // a month without patches says so, in Chinese, on the phone's width
    await page.goto(`${base}#/map?month=2024-02`);
    await page.waitForSelector('#patch-empty');
    expect(await page.textContent('#patch-empty')).toMatch(/2024-02/);
    await fitsTheScreen(page, 'empty patch list on a phone');
    // the filters too: each within the screen (the page hides what overflows sideways, so its width cannot tell)
    for (const f of await page.$$eval('.filters label', (ls) =>
      ls.map((l) => ({ right: l.getBoundingClientRect().right, text: l.textContent })),
    ))
      expect(f.right, `filter ${f.text} off the right edge`).toBeLessThanOrEqual(375);
    await inChinese(page, 'empty patch list on a phone');
    await page.screenshot({ path: join(SHOTS, '6c-phone-list-empty.png'), fullPage: true });
    expect((page as Page & { failures: string[] }).failures).toEqual([]);
    await page.close();
  });

  it('walks a town inspector on a phone (375 × 812) from the to-do list to a reported rectification', async () => {
    const code = townCodes['350206001'][1];
    const t0 = performance.now();
    const page = await signInAt('dianqian', 'town-office-pass', 375, 812);
    const loads: string[] = [`sign-in to to-do ${Math.round(performance.now() - t0)} ms`];
    await fitsTheScreen(page, 'to-do');
    await thumbSized(page, 'to-do');
    await inChinese(page, 'to-do');
    // the to-do as cards: each whole on the screen, the working days left on the first line, a card a thumb can hit
    const cards = await page.$$eval('#todo-table tr[data-code]', (rows) =>
      rows.map((r) => {
        const box = r.getBoundingClientRect();
        const days = r.querySelector('td.days')!.getBoundingClientRect();
        const code = r.querySelector('td.code')!.getBoundingClientRect();
        return { right: box.right, height: box.height, daysTop: days.top, codeTop: code.top };
      }),
    );
    expect(cards.length).toBeGreaterThan(0);
    for (const c of cards) {
      expect(c.right).toBeLessThanOrEqual(375);
      expect(c.height).toBeGreaterThanOrEqual(44);
      expect(c.daysTop).toBeLessThan(c.codeTop);
    }
    await page.screenshot({ path: join(SHOTS, '6-phone-todo.png'), fullPage: true });
    const t1 = performance.now();
    await page.click(`#todo-table tr[data-code="${code}"]`);
    await page.waitForSelector('#patch-code');
    await page.waitForFunction(() => (document.querySelector('#chip-after') as HTMLImageElement)?.naturalWidth > 0);
    loads.push(`patch page with chips ${Math.round(performance.now() - t1)} ms`);
    // on a phone the patch page opens with the deadline and the days left, then the chips, where it is, what to do
    expect((await page.textContent('#deadline'))!.replace(/\s+/g, ' ')).toMatch(/核查 2024-03-\d\d · 剩 \d 个工作日/);
    const tops = await page.evaluate(() =>
      ['#deadline', '.chips', '#location', '.card.actions', '.card.history', '.card.attrs'].map(
        (s) => document.querySelector(s)!.getBoundingClientRect().top,
      ),
    );
    expect(tops).toEqual([...tops].sort((a, b) => a - b));
    // the way back is to the list the clerk came from
    expect(await page.textContent('#back')).toBe('← 返回待办');
    expect(await page.getAttribute('#back', 'href')).toBe('#/todo');
    const t2 = performance.now();
    await page.goto(`${base}/#/map`);
    await page.waitForSelector('#patch-table tbody tr');
    loads.push(`map page with its list ${Math.round(performance.now() - t2)} ms`);
    await thumbSized(page, 'map page');
    await inChinese(page, 'map page');
    // 我的位置: the phone's position on the map, in words with its accuracy, the view on it
    const site = await page.evaluate(() => {
      const m = (window as unknown as { __tubanMap: import('ol/Map.js').default }).__tubanMap;
      return m.getView().getCenter();
    });
    expect(site).toBeTruthy();
    await page.context().grantPermissions(['geolocation']);
    await page.context().setGeolocation({ longitude: 118.1, latitude: 24.515, accuracy: 12 });
    await page.click('#locate');
    await expect.poll(() => page.textContent('#here-msg')).toBe('你在这里（精度约 12 米）');
    const hereCount = await page.evaluate(() => {
      const m = (window as unknown as { __tubanMap: import('ol/Map.js').default }).__tubanMap;
      const layers = m.getLayers().getArray() as unknown as {
        getSource(): { getFeatures?(): { get(k: string): unknown }[] };
      }[];
      return layers.flatMap((l) => l.getSource().getFeatures?.() ?? []).filter((f) => f.get('kind') === 'here').length;
    });
    expect(hereCount).toBe(1);
    // 我的位置 sits under the zoom buttons (44 px on a phone), never over 缩小
    const [zoomOut, locateBox] = await Promise.all([
      page.locator('.ol-zoom-out').boundingBox(),
      page.locator('#locate').boundingBox(),
    ]);
    expect(locateBox!.y).toBeGreaterThanOrEqual(zoomOut!.y + zoomOut!.height);
    await page.screenshot({ path: join(SHOTS, '6-phone-map-here.png') });
    // a patch chosen in the list is fitted beside the divider: neither the line nor its handle covers it
    const chosen = String(await page.getAttribute('#patch-table tbody tr', 'data-code'));
    await page.click(`#patch-table tbody tr[data-code="${chosen}"]`);
    await page.waitForTimeout(600); // the view's 250 ms animation
    const placed = await page.evaluate((code) => {
      const m = (window as unknown as { __tubanMap: import('ol/Map.js').default }).__tubanMap;
      const layers = m.getLayers().getArray() as unknown as {
        getSource(): { getFeatureById?(id: string): { getGeometry(): { getExtent(): number[] } } | null };
      }[];
      const f = layers.map((l) => l.getSource().getFeatureById?.(code)).find(Boolean)!;
      const [x0, y0, x1, y1] = f.getGeometry().getExtent();
      const a = m.getPixelFromCoordinate([x0, y1]);
      const b = m.getPixelFromCoordinate([x1, y0]);
      const box = document.querySelector('#map')!.getBoundingClientRect();
      const line = document.querySelector('.swipe-line')!.getBoundingClientRect();
      const handle = document.querySelector('.swipe-handle')!.getBoundingClientRect();
      return {
        patch: { left: box.left + a[0], top: box.top + a[1], right: box.left + b[0], bottom: box.top + b[1] },
        line: line.left,
        handle: { left: handle.left, top: handle.top, right: handle.right, bottom: handle.bottom },
      };
    }, chosen);
    const overlaps = (p: typeof placed.patch, h: typeof placed.handle) =>
      p.left < h.right && h.left < p.right && p.top < h.bottom && h.top < p.bottom;
    expect(placed.line < placed.patch.left || placed.line > placed.patch.right, JSON.stringify(placed)).toBe(true);
    expect(overlaps(placed.patch, placed.handle), JSON.stringify(placed)).toBe(false);
    await page.screenshot({ path: join(SHOTS, '6-phone-map-selected.png') });
    console.log(`page loads on a phone viewport: ${loads.join('; ')}`);
    await page.goBack();
    await page.waitForSelector('#patch-code');
    expect(await page.textContent('#location')).toMatch(/经度 \d+\.\d{6}, 纬度 \d+\.\d{6}/);
    await fitsTheScreen(page, 'patch page');
    await thumbSized(page, 'patch page');
    await inChinese(page, 'patch page');
    await page.screenshot({ path: join(SHOTS, '6-phone-patch.png'), fullPage: true });
    const act = async (action: string, fill: (form: string) => Promise<void>) => {
      await page.click(`[data-open=${action}]`);
      await fitsTheScreen(page, `${action} form`);
      await thumbSized(page, `${action} form`);
      await inChinese(page, `${action} form`);
      await fill('form.actionform');
      await page.click('form.actionform button[type=submit]');
      await expect.poll(() => page.textContent('#action-msg')).toContain(`${label('action', action)} ✓`);
    };
    // a verdict of 违法 needs a photo of the site: the page says so, and the photo is marked 核查
    expect(await page.textContent('#photos-needed')).toBe('违法须有 1 张核查照片，现有 0 张');
    const cameraPhoto = (at: string) =>
      sharp({ create: { width: 64, height: 48, channels: 3, background: '#6a6' } })
        .withExif({
          IFD2: { DateTimeOriginal: at },
          IFD3: {
            GPSLatitudeRef: 'N',
            GPSLatitude: '24/1 30/1 5600/100',
            GPSLongitudeRef: 'E',
            GPSLongitude: '118/1 5/1 5560/100',
          },
        })
        .jpeg()
        .toBuffer();
    // an old picture from the phone's album: taken long before the patch was dispatched, and flagged so
    await page.setInputFiles('label.camera input', {
      name: '现场.jpg',
      mimeType: 'image/jpeg',
      buffer: await cameraPhoto('2024:03:01 09:15:00'),
    });
    await expect.poll(() => page.textContent('#evidence [data-stage=verify]')).toContain('现场.jpg');
    expect(await page.textContent('#evidence [data-stage=verify] .flag')).toBe('拍摄早于下发');
    // the camera's time and how far from the patch it was taken, from the photo's EXIF
    expect(await page.textContent('#evidence .exif')).toMatch(/拍摄于 2024-03-01 09:15:00 · 距图斑 \d+ m/);
    expect(await page.textContent('#evidence [data-stage=verify] .author')).toContain('殿前街道办 上传');
    await act('verify', async (f) => {
      await page.selectOption(`${f} select[name=result]`, 'illegal');
      await page.selectOption(`${f} select[name=violation]`, 'construction');
    });
    await act('rectify', async (f) => {
      await page.selectOption(`${f} select[name=measure]`, 'demolish');
    });
    expect(await page.textContent('#photos-needed')).toBe('上报整改完成须有 1 张整改照片，现有 0 张');
    // the photo of the demolition, from the phone's camera, taken now
    const now = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ').replace(/-/g, ':');
    await page.setInputFiles('label.camera input', {
      name: '拆除后.jpg',
      mimeType: 'image/jpeg',
      buffer: await cameraPhoto(now),
    });
    await expect.poll(() => page.textContent('#evidence [data-stage=rectify]')).toContain('拆除后.jpg');
    expect(await page.$$('#evidence [data-stage=rectify] .flag')).toHaveLength(0);
    await act('report_rectified', async () => {});
    expect(await page.textContent('#patch-code')).toContain('已整改');
    await fitsTheScreen(page, 'patch page after the report');
    await thumbSized(page, 'patch page after the report');
    await page.screenshot({ path: join(SHOTS, '7-phone-reported.png'), fullPage: true });
    expect(await run.db('patch').where({ code }).first('status')).toEqual({ status: 'rectified' });
    expect((page as Page & { failures: string[] }).failures).toEqual([]);
    await page.close();
  });

  it('lets a supervisor (1366 × 768) close a rectified patch from the to-do list', async () => {
    const code = townCodes['350206001'][2];
    // the town's part, through the workflow: verified illegal, demolished, a photo, reported
    await addEvidence(run.db, objectStore(run.config), 1 << 20, clerk, code, { filename: 'site.jpg', bytes: JPEG });
    await applyAction(run.db, env, clerk, code, 'verify', { result: 'illegal', violation: 'construction' });
    await applyAction(run.db, env, clerk, code, 'rectify', { measure: 'demolish' });
    const photo = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#6a6' } })
      .png()
      .toBuffer();
    await addEvidence(run.db, objectStore(run.config), 1 << 20, clerk, code, { filename: 'done.png', bytes: photo });
    await applyAction(run.db, env, clerk, code, 'report_rectified', {});
    const page = await signInAt('sup', 'supervisor-pass', 1366, 768);
    await page.click('a[href="#/board"]');
    await page.waitForSelector('#ranking');
    await fitsTheScreen(page, 'board');
    await page.click('a[href="#/todo"]');
    await page.click(`#todo-table tr[data-code="${code}"]`);
    await page.waitForSelector('#patch-code');
    await fitsTheScreen(page, 'patch page');
    // before closing, the supervisor sees the verification and the rectification photos side by side
    const [verify, rectify] = await page.$$eval('#evidence section.stage', (els) =>
      els.map((e) => ({ ...e.getBoundingClientRect().toJSON(), text: e.textContent ?? '' })),
    );
    expect(verify.text).toContain('核查照片');
    expect(verify.text).toContain('site.jpg');
    expect(rectify.text).toContain('整改照片');
    expect(rectify.text).toContain('done.png');
    expect(rectify.top).toBe(verify.top);
    expect(rectify.left).toBeGreaterThan(verify.left + verify.width - 1);
    await page.screenshot({ path: join(SHOTS, '8-supervisor-before-close.png'), fullPage: true });
    await page.click('[data-open=close]');
    await page.click('form.actionform button[type=submit]');
    await expect.poll(() => page.textContent('#action-msg')).toContain('销号 ✓');
    expect(await page.textContent('#patch-code')).toContain('已销号');
    await page.screenshot({ path: join(SHOTS, '8-supervisor-closed.png'), fullPage: true });
    expect((page as Page & { failures: string[] }).failures).toEqual([]);
    await page.close();
  });

  it('keeps the month, filters and sort in the URL, so a link or a reload shows the same list', async () => {
    const page = await signIn('sup', 'supervisor-pass');
    const patches = (await run.db('patch').where({ month: '2024-03' }).select('code', 'area_m2')).map((p) => ({
      code: String(p.code),
      area: Number(p.area_m2),
    }));
    const byArea = [...patches].sort((a, b) => b.area - a.area || a.code.localeCompare(b.code));
    // the smallest patch is left out by the area filter the link carries
    const minArea = Math.floor(byArea[byArea.length - 1].area) + 1;
    const shown = byArea.filter((p) => p.area >= minArea);
    expect(shown.length).toBeGreaterThan(1);
    expect(shown.length).toBeLessThan(patches.length);
    const listed = () =>
      page.$$eval('#patch-table tbody tr', (rows) => rows.map((r) => String((r as HTMLElement).dataset.code)));
    await page.goto(`${base}/#/map?month=2024-03&min_area_m2=${minArea}&sort=area_m2&dir=desc`);
    await expect.poll(listed).toEqual(shown.map((p) => p.code));
    expect(await page.inputValue('input[name=min_area_m2]')).toBe(String(minArea));
    expect(await page.getAttribute('th[data-sort=area_m2]', 'class')).toContain('sorted-desc');
    // sorting again turns the order and rewrites the URL; a reload shows the same
    await page.click('th[data-sort=area_m2]');
    const ascending = [...shown].reverse().map((p) => p.code);
    await expect.poll(listed).toEqual(ascending);
    expect(page.url()).toContain('sort=area_m2');
    expect(page.url()).not.toContain('dir=desc');
    expect(page.url()).toContain(`min_area_m2=${minArea}`);
    await page.reload();
    await expect.poll(listed).toEqual(ascending);
    expect((page as Page & { failures: string[] }).failures).toEqual([]);
    await page.close();
  });

  it('shows the supervisor the deadlines by town, the ranking with zero-growth towns and the monthly chart', async () => {
    const page = await signIn('sup', 'supervisor-pass');
    await page.click('a[href="#/board"]');
    await page.waitForSelector('#ranking', { timeout: 60_000 }).catch(async (err) => {
      throw new Error(
        `${err.message}; page shows: ${await page.textContent('#main')}; errors: ${(page as Page & { failures: string[] }).failures.join(' | ')}`,
      );
    });
    const ranking = await page.textContent('#ranking');
    expect(ranking).toContain('殿前街道');
    expect(ranking).toContain('禾山街道');
    expect(await page.$$eval('#trend rect', (r) => r.length)).toBeGreaterThan(0);
    expect(await page.textContent('#trend')).toContain('3'); // 2024-03: 5 new patches drawn as a bar with its count
    expect(await page.textContent('#board-deadlines')).toMatch(/350206-202403-000\d/);
    // in Chinese only, until the user picks English in the header (and back)
    expect(ranking).toContain('全市');
    expect(ranking).not.toContain('City');
    expect(await page.textContent('#signout')).toBe('退出');
    await page.screenshot({ path: join(SHOTS, '4-supervisor-board.png'), fullPage: true });
    const [workbook] = await Promise.all([page.waitForEvent('download'), page.click('#ranking-xlsx')]);
    expect(workbook.suggestedFilename()).toMatch(/^\d{4}-\d{2}_镇街排名\.xlsx$/);
    const [register] = await Promise.all([page.waitForEvent('download'), page.click('#yearly-pdf')]);
    expect(register.suggestedFilename()).toMatch(/^\d{4}_两违图斑年度台账\.pdf$/);
    await page.click('#locale');
    await expect.poll(() => page.textContent('#ranking')).toContain('City');
    expect(await page.textContent('#ranking')).not.toContain('全市');
    expect(await page.textContent('#signout')).toBe('Sign out');
    expect(await page.textContent('#locale')).toContain('中文');
    await page.screenshot({ path: join(SHOTS, '4-supervisor-board-en.png'), fullPage: true });
    await page.click('#locale');
    await expect.poll(() => page.textContent('#signout')).toBe('退出');
    await expect.poll(() => page.textContent('#ranking')).toContain('全市');
    await page.close();
  });

  it('lets a supervisor tick deadlines on the board and escalate them together, and extend every match on the map', async () => {
    const page = await signInAt('sup', 'supervisor-pass', 1366, 768);
    await page.click('a[href="#/board"]');
    await page.waitForSelector('#board-deadlines input.tick');
    const ticked = await page.$eval('#board-deadlines input.tick', (el) => el.getAttribute('aria-label'));
    await page.click('#board-deadlines input.tick');
    expect(await page.textContent('#bulk-count')).toContain('已选 1 个图斑');
    await page.selectOption('#bulk-action', 'escalate');
    await page.fill('#bulk input[name=reason]', '逾期未核查，挂牌督办');
    await page.click('#bulk-apply');
    await expect.poll(() => page.textContent('#bulk-answer')).toContain('挂牌督办：已办理 1 个，0 个未办理');
    const code = /\S+$/.exec(ticked!)![0];
    expect((await run.db('patch').where({ code }).first()).escalated_at).not.toBeNull();

    await page.click('a[href="#/map"]');
    await page.waitForSelector('#patch-table tbody tr[data-code]');
    await page.selectOption('select[name=status]', 'dispatched');
    await page.waitForSelector('#bulk-all');
    const matches = await run.db('patch').where({ month: '2024-03', status: 'dispatched' }).count({ n: '*' });
    // (the list reloads with the filter: wait for its count)
    await expect
      .poll(() => page.textContent('#bulk'))
      .toContain(`全部 ${matches[0].n} 个符合条件的图斑（2024-03 · 已下发）`);
    await page.check('#bulk-all');
    await page.selectOption('#bulk-action', 'extend');
    await page.fill('#bulk input[name=working_days]', '2');
    await page.fill('#bulk input[name=reason]', '雨季');
    await fitsTheScreen(page, 'map with the bulk bar');
    await page.screenshot({ path: join(SHOTS, '10-supervisor-bulk.png'), fullPage: true });
    await page.click('#bulk-apply');
    await expect.poll(() => page.textContent('#bulk-answer')).toContain(`延期：已办理 ${matches[0].n} 个`);
    expect((page as Page & { failures: string[] }).failures).toEqual([]);
    await page.close();
  });

  it('shows the analyst a running batch live from BullMQ, to completion', async () => {
    const page = await signIn('ana', 'analyst-pass');
    const lastBatch = async () => Number((await run.db('batch').max('id as id').first())?.id ?? 0);
    const before = await lastBatch();
    const rerun = runBatch(run.db, run.config, '2024-03', '2024-02');
    await expect.poll(lastBatch, { timeout: 60_000 }).toBeGreaterThan(before);
    const id = await lastBatch();
    await page.goto(`${base}/#/batches/${id}`);
    await page.waitForSelector('#batch-tiles');
    const summary = await rerun;
    expect(summary.status).toBe('completed');
    await expect.poll(() => page.getAttribute('#batch-status', 'data-status'), { timeout: 60_000 }).toBe('completed');
    expect(await page.textContent('#batch-status')).toBe('已完成');
    const tiles = await page.$$eval('#batch-tiles tr', (rows) =>
      rows.slice(1).map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(tiles.length).toBe(4);
    for (const t of tiles) expect(t.slice(1, 4)).toEqual(['已完成', '已完成', '1/1']); // status, the part job's state, parts done (in words)
    await inChinese(page, 'batches page');
    await page.screenshot({ path: join(SHOTS, '5-analyst-batch.png'), fullPage: true });

    // 更正镇街 picks the town from the town layer, never a typed code (and puts the patch back after)
    const open = await run.db('patch').whereIn('status', ['detected', 'dispatched']).first('code', 'town_code');
    const correct = async (to: string) => {
      await page.goto(`${base}/#/patch/${open.code}`);
      await page.click('[data-open=correct_town]');
      const f = 'form.actionform[data-action=correct_town]';
      await page.waitForSelector(`${f} select[name=town_code] option[value="${to}"]`, { state: 'attached' });
      const towns = await page.$$eval(`${f} select[name=town_code] option`, (o) =>
        o.map((x) => (x as HTMLOptionElement).value),
      );
      expect(towns[0]).toBe(''); // nothing chosen
      expect(towns).toContain(to);
      expect(towns).not.toContain((await run.db('patch').where({ code: open.code }).first('town_code')).town_code);
      await page.selectOption(`${f} select[name=town_code]`, to);
      expect(await page.isDisabled(`${f} button[type=submit]`)).toBe(true); // the reason still missing
      await page.fill(`${f} input[name=reason]`, '界线核实');
      await page.click(`${f} button[type=submit]`);
      await expect
        .poll(async () => (await run.db('patch').where({ code: open.code }).first('town_code')).town_code)
        .toBe(to);
    };
    await correct(open.town_code === '350206001' ? '350206002' : '350206001');
    await correct(open.town_code);
    await page.close();
  });

  it('shows a supervisor on a phone what the next month’s imagery says of a reported demolition (回头看)', async () => {
    const code = townCodes['350206002'][0];
    const heshan = await createUser(run.db, { username: 'heshan', role: 'town', townCode: '350206002' });
    await addEvidence(run.db, objectStore(run.config), 1 << 20, heshan, code, { filename: 'site.jpg', bytes: JPEG });
    await applyAction(run.db, env, heshan, code, 'verify', { result: 'illegal', violation: 'construction' });
    await applyAction(run.db, env, heshan, code, 'rectify', { measure: 'demolish' });
    const photo = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#a66' } })
      .png()
      .toBuffer();
    await addEvidence(run.db, objectStore(run.config), 1 << 20, heshan, code, { filename: 'done.png', bytes: photo });
    await applyAction(run.db, env, heshan, code, 'report_rectified', {});
    // April: March's pixels again, so every structure still stands
    const dir = join(run.config.dataDir, 'imagery-2024-04');
    copyMonth(fixturesDir, '2024-03', dir);
    expect((await registerImagery(run.db, run.config, '2024-04', [dir], '2024-04-12')).refused).toEqual([]);
    await runBatch(run.db, run.config, '2024-04', '2024-03');

    const page = await signInAt('sup', 'supervisor-pass', 375, 812);
    await page.goto(`${base}/#/board`);
    await page.waitForSelector('#board-lookback');
    expect(await page.textContent('#board-lookback')).toContain(code);
    expect(await page.textContent('#board-lookback')).toContain('报告已整改但影像仍在');
    await fitsTheScreen(page, 'board on a phone');
    await thumbSized(page, 'board on a phone');
    await inChinese(page, 'board on a phone');
    await page.click(`#board-lookback a[href="#/patch/${code}"]`);
    await page.waitForSelector('#chip-check');
    await expect
      .poll(() => page.$eval('#chip-check', (img) => (img as HTMLImageElement).naturalWidth))
      .toBeGreaterThan(0);
    expect(await page.textContent('figure.check figcaption')).toContain('2024-04：仍在');
    await fitsTheScreen(page, 'patch page with the imagery check');
    await thumbSized(page, 'patch page with the imagery check');
    await inChinese(page, 'patch page with the imagery check');
    await page.screenshot({ path: join(SHOTS, '9-phone-lookback.png'), fullPage: true });
    // closing against the imagery needs a reason, said in Chinese
    await page.click('[data-open=close]');
    await page.click('form.actionform button[type=submit]');
    await expect.poll(() => page.textContent('#action-msg')).toContain('仍在');
    await page.fill('form.actionform input[name=reason]', '现场复核：已拆除，影像为拆除前所摄');
    await page.click('form.actionform button[type=submit]');
    await expect.poll(() => page.textContent('#patch-code')).toContain('已销号');
    expect((page as Page & { failures: string[] }).failures).toEqual([]);
    await page.close();
  });

  it('lets an admin add a town user with the town picked from the layer, set a password, and disable and enable', async () => {
    const page = await signInAt('root', 'admin-pass-0001', 1366, 768);
    await page.waitForSelector('#users'); // an admin lands on the users
    expect(await page.textContent('#users')).toContain('殿前街道');
    // a town user: the town comes from a choice once the role says town
    const f = '#new-user';
    expect(await page.$(`${f} select[name=town_code]`)).toBeNull();
    await page.fill(`${f} input[name=username]`, 'xinxu');
    await page.fill(`${f} input[name=display_name]`, '禾山街道执法队');
    await page.selectOption(`${f} select[name=role]`, 'town');
    await page.selectOption(`${f} select[name=town_code]`, '350206002');
    await page.fill(`${f} input[name=password]`, 'town-first-pass');
    await page.click(`${f} button[type=submit]`);
    await expect.poll(() => page.textContent('#admin-msg')).toContain('已新增用户 xinxu');
    expect(await run.db('app_user').where({ username: 'xinxu' }).first('role', 'town_code', 'display_name')).toEqual({
      role: 'town',
      town_code: '350206002',
      display_name: '禾山街道执法队',
    });
    // a new password for the user (their sign-ins end)
    await page.click('tr[data-user=xinxu] [data-do=password]');
    await page.fill('#password-form input[name=password]', 'short-but-ok?');
    await page.click('#password-form button');
    await expect.poll(() => page.textContent('#admin-msg')).toContain('xinxu 的密码已重设');
    // disable, then enable
    await page.click('tr[data-user=xinxu] [data-do=disable]');
    await expect.poll(() => page.textContent('#admin-msg')).toContain('xinxu 已停用');
    expect((await run.db('app_user').where({ username: 'xinxu' }).first('disabled')).disabled).toBe(true);
    await page.click('tr[data-user=xinxu] [data-do=enable]');
    await expect
      .poll(async () => (await run.db('app_user').where({ username: 'xinxu' }).first('disabled')).disabled)
      .toBe(false);
    // an admin cannot disable themself here
    expect(await page.isDisabled('tr[data-user=root] [data-do=disable]')).toBe(true);
    await inChinese(page, 'admin page');
    await page.screenshot({ path: join(SHOTS, '11-admin-users.png'), fullPage: true });
    expect((page as Page & { failures: string[] }).failures).toEqual([]);
    await page.close();
  });

  it('says every action form, and a refusal, in Chinese on a phone', async () => {
    // a patch of its own, as a batch would have stored it, waiting on the analyst: no other scenario touches it
    const source = townCodes['350206002'][1];
    const code = `${source.slice(0, -4)}9001`;
    await run.db.raw(
      `insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, grid_code,
                          area_m2, farmland_m2, ecological_m2, water_m2, class, mean_prob, source_tiles, model_name,
                          model_version, status, geom, centroid, building_relation, registered_building_m2, extension_m2)
       select ?, month, 9001, batch_id, baseline_month, district_code, town_code, town_name, grid_code,
              area_m2, farmland_m2, ecological_m2, water_m2, class, mean_prob, source_tiles, model_name,
              model_version, 'detected', geom, centroid, building_relation, registered_building_m2, extension_m2
       from patch where code = ?
       on conflict (code) do nothing`,
      [code, source],
    );
    const seen: string[] = [];
    const everyForm = async (page: Page, who: string) => {
      await page.goto(`${base}/#/patch/${code}`);
      await page.waitForSelector('#patch-code');
      const actions = await page.$$eval('[data-open]', (b) => b.map((x) => String((x as HTMLElement).dataset.open)));
      for (const action of actions) {
        await page.click(`[data-open=${action}]`);
        await page.waitForSelector('form.actionform');
        await inChinese(page, `${who}: ${action} form`);
        await thumbSized(page, `${who}: ${action} form`);
        seen.push(action);
        await page.click('[data-cancel]');
      }
    };
    const analystPage = await signInAt('ana', 'analyst-pass', 375, 812);
    await everyForm(analystPage, 'analyst, detected');
    // a refusal said in words: a patch that does not exist cannot be merged in
    await analystPage.click('[data-open=merge]');
    await analystPage.fill('form.actionform input[name=other]', '350206-202403-9999');
    await analystPage.fill('form.actionform [name=reason]', '同一栋房屋');
    await analystPage.click('form.actionform button[type=submit]');
    await expect.poll(() => analystPage.textContent('#action-msg')).toMatch(/350206-202403-9999/);
    await inChinese(analystPage, 'a refused merge');
    await analystPage.click('[data-cancel]');
    // dispatched: the analyst's corrections, then the supervisor's extend and escalate
    await analystPage.click('[data-open=dispatch]');
    await analystPage.click('form.actionform button[type=submit]');
    await expect.poll(() => analystPage.textContent('#action-msg')).toContain('下发 ✓');
    await everyForm(analystPage, 'analyst, dispatched');
    await analystPage.close();
    const supPage = await signInAt('sup', 'supervisor-pass', 375, 812);
    await everyForm(supPage, 'supervisor, dispatched');
    await supPage.close();
    expect(new Set(seen)).toEqual(
      new Set(['dispatch', 'dismiss', 'correct_town', 'merge', 'split', 'extend', 'escalate']),
    );
  });
});
