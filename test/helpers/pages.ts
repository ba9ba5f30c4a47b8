import { expect } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Checks the browser tests make of any page at a phone's or a desk's size (issue 31). */

/** Every visible control in the page's main area a thumb can hit: at least 44 px high (WCAG's target size). */
export async function thumbSized(page: Page, what: string): Promise<void> {
  const small = await page.$$eval(
    'main a, main button, main select, main input:not([type=hidden]), main summary, main label.camera',
    (els) =>
      els
        .filter((e) => {
          const r = e.getBoundingClientRect();
          return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden';
        })
        .filter(
          (e) =>
            e.getBoundingClientRect().height < 44 &&
            !(
              e instanceof HTMLInputElement &&
              ['checkbox', 'radio'].includes(e.type) &&
              e.closest('label') &&
              e.closest('label')!.getBoundingClientRect().height >= 44
            ),
        )
        .map(
          (e) =>
            `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''} "${(e.textContent ?? '').trim().slice(0, 20)}" ${Math.round(e.getBoundingClientRect().height)} px`,
        ),
  );
  expect(small, `${what}: controls under 44 px`).toEqual([]);
}

/**
 * A zh-CN page says everything in Chinese: no Latin-letter word in the header, the outbox or the main area but
 * codes, units, formats and names (user names, the model's, file names) that are written so in Chinese too.
 */
export async function inChinese(page: Page, what: string): Promise<void> {
  const text = await page.evaluate(() =>
    [document.querySelector('header'), document.querySelector('main')]
      .map((e) => (e as HTMLElement | null)?.innerText ?? '')
      .join('\n'),
  );
  const ALLOWED = new Set([
    'tuban',
    'English',
    'CGCS2000',
    'WGS',
    'EPSG',
    'PDF',
    'Excel',
    'GeoPackage',
    'GeoJSON',
    'KML',
    'CSV',
    'SHP',
    'XLSX',
    'GPKG',
    'zip',
    'QR',
    'EXIF',
    'GPS',
    'km',
    'MB',
    'KB',
    'cva',
    'baseline',
    'siam',
    'unet',
    'lite',
    'png',
    'jpg',
    'jpeg',
    'tif',
    'ana',
    'sup',
    'root',
    'dianqian',
    'heshan',
    'xinxu',
    'batch',
    'system',
    'm',
    'p',
    'B',
    'CGCS',
    'Shapefile',
    'F', // F1, the metric, written so in Chinese too
    'model', // the command tuban model
    'blind', // a model version's name (web.models)
  ]);
  // paths and file names are the user's own words
  const words = [
    ...new Set(
      text
        .replace(/\S*[/\\]\S*/g, ' ')
        .replace(/\S+\.(png|jpe?g|pdf|tif)\b/gi, ' ')
        .match(/[A-Za-z]{1,}/g) ?? [],
    ),
  ].filter((w) => !ALLOWED.has(w));
  expect(words, `${what}: Latin words on a zh-CN page`).toEqual([]);
}

/** The page is no wider than the screen, and every action button lies inside it. */
export async function fitsTheScreen(page: Page, what: string): Promise<void> {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  expect(scrollWidth, `${what}: page ${scrollWidth} px wide on a ${innerWidth} px screen`).toBeLessThanOrEqual(
    innerWidth,
  );
  for (const b of await page.$$('[data-open], #upload button, label.camera')) {
    const box = await b.boundingBox();
    expect(box, what).not.toBeNull();
    expect(box!.x, what).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width, `${what}: ${await b.textContent()} off the right edge`).toBeLessThanOrEqual(
      innerWidth + 0.5,
    );
    expect(await b.isVisible()).toBe(true);
  }
}

/** Debian's Chromium, which the browser tests drive (no browser is downloaded). */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium as every browser test starts it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-extensions',
      '--no-first-run',
    ],
  });
}
