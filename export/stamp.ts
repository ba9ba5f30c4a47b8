import sharp from 'sharp';
import { label } from '../i18n/index.ts';
import { cjkFamilyName } from './fonts.ts';
import type { EvidenceStage, PhotoFlag } from '../workflow/evidence.proof.ts';

/** The longest side of a stamped copy, px: sharp on an A4 sheet and small enough for a town's package. */
const STAMP_MAX_PX = 2048;

export interface StampFacts {
  /** The camera's time as recorded (photoPlace); null: none. */
  takenAt: string | null;
  /** The upload, in the city's local time, `YYYY-MM-DD HH:MM`. */
  uploadedLocal: string;
  lon: number | null;
  lat: number | null;
  distanceM: number | null;
  code: string;
  author: string;
  stage: EvidenceStage;
  flags: PhotoFlag[];
}

/** Text for Pango markup: the user's name and the patch code are data, not markup. */
const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

/** The lines drawn on a photo, in the bureau's language (the copy goes into Chinese exports and sheets). */
function stampLines(f: StampFacts): { text: string; warn: boolean }[] {
  const place =
    f.lon !== null && f.lat !== null
      ? `位置 ${f.lon.toFixed(6)}, ${f.lat.toFixed(6)}${f.distanceM !== null ? `　距图斑 ${Math.round(f.distanceM)} 米` : ''}`
      : '位置 无';
  const lines = [
    { text: `拍摄 ${f.takenAt ? f.takenAt.replace('T', ' ') : '无'}　上传 ${f.uploadedLocal}`, warn: false },
    { text: place, warn: false },
    { text: `图斑 ${f.code}　${label('stage', f.stage)}照片　${f.author}`, warn: false },
  ];
  if (f.flags.length)
    lines.push({ text: `注意：${f.flags.map((x) => label('photo_flag', x)).join('、')}`, warn: true });
  return lines;
}

/**
 * A stamped copy of a photo: turned upright, fitted inside STAMP_MAX_PX, with a dark band along the
 * bottom that states when and where it was taken, the patch, the stage, who took it and its flags.
 * JPEG. Null when the photo does not decode (the original is kept and shown as it is).
 */
export async function stampPhoto(bytes: Buffer, facts: StampFacts, fontPath: string): Promise<Buffer | null> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: 100_000_000 })
      .rotate()
      .resize(STAMP_MAX_PX, STAMP_MAX_PX, { fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const fontPx = Math.max(12, Math.round(Math.min(info.width, info.height * 1.4) / 42));
    const markup = stampLines(facts)
      .map((l) => `<span foreground="${l.warn ? '#ffd54f' : '#ffffff'}">${escape(l.text)}</span>`)
      .join('\n');
    const pad = Math.round(fontPx * 0.6);
    const text = await sharp({
      text: {
        text: markup,
        fontfile: fontPath,
        font: `${cjkFamilyName(fontPath)} ${fontPx}px`,
        rgba: true,
        width: Math.max(1, info.width - 2 * pad),
        dpi: 72,
        wrap: 'char',
      },
    })
      .png()
      .toBuffer({ resolveWithObject: true });
    const bandH = Math.min(info.height, text.info.height + 2 * pad);
    const band = await sharp({
      create: { width: info.width, height: bandH, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.6 } },
    })
      .png()
      .toBuffer();
    return await sharp(data, { raw: info })
      .composite([
        { input: band, left: 0, top: info.height - bandH },
        {
          input: text.data,
          left: pad,
          top: Math.max(0, info.height - bandH + pad),
        },
      ])
      .jpeg({ quality: 85, mozjpeg: true })
      .toBuffer();
  } catch {
    return null;
  }
}
