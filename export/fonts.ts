import { existsSync } from 'node:fs';
import { BadInputError } from '../core/errors.ts';

/** CJK fonts tried in order (Debian: fonts-wqy-microhei, fonts-noto-cjk); TUBAN_PDF_FONT overrides. */
const FONT_CANDIDATES = [
  '/usr/share/fonts/truetype/wqy/wqy-microhei.ttc',
  '/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc',
  '/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc',
];

export function findCjkFont(override?: string): string {
  const found = [override, ...FONT_CANDIDATES].find((f) => f && existsSync(f));
  if (!found)
    throw new BadInputError(
      'font_missing',
      `PDF sheets need a Chinese font: install fonts-wqy-microhei (apt-get install fonts-wqy-microhei) or set TUBAN_PDF_FONT to a .ttf/.ttc file`,
    );
  return found;
}

/** The face pdfkit takes from a font collection (.ttc), by PostScript name; undefined for a .ttf/.otf. */
export function cjkFamily(fontPath: string): string | undefined {
  if (!fontPath.endsWith('.ttc')) return undefined;
  if (fontPath.includes('wqy-microhei')) return 'WenQuanYiMicroHei';
  if (fontPath.includes('zenhei')) return 'WenQuanYiZenHei';
  return 'NotoSansCJKsc-Regular';
}
