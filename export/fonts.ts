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

/** The family name fontconfig and Pango know the font by (for text drawn by sharp). */
export function cjkFamilyName(fontPath: string): string {
  if (fontPath.includes('wqy-microhei')) return 'WenQuanYi Micro Hei';
  if (fontPath.includes('zenhei')) return 'WenQuanYi Zen Hei';
  if (fontPath.toLowerCase().includes('noto')) return 'Noto Sans CJK SC';
  return 'sans';
}

/** The Chinese font, or null where none is installed (callers that can do without one). */
export function cjkFontOrNull(override?: string): string | null {
  return [override, ...FONT_CANDIDATES].find((f) => f && existsSync(f)) ?? null;
}
