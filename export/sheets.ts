import sharp from 'sharp';
import { renderChip } from './chip.ts';
import { openByteSource } from '../pipeline/io/byte.source.ts';
import type { ExportRecord } from './fields.ts';
import type { SheetImages } from './write.pdf.ts';
import type { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import type { BandStretch } from '../pipeline/raster.normalise.ts';

/** JPEG quality of the chips on a verification sheet: the outline and roofs stay sharp at print size. */
const SHEET_JPEG_QUALITY = 85;

export type OpenSource = (path: string) => Promise<GeoTiffSource>;

/** What a chip needs from the database, as plain data (it crosses to the PDF thread). */
export interface ChipPlan {
  tiles: { path: string; stretch: BandStretch | null }[];
  boundsWorld: [number, number, number, number];
  gsdM: number;
  outline: number[][][][];
  colour: string;
  widthPx: number;
}

/** Cuts a planned chip from its tiles and draws the outline: a PNG. */
export async function renderChipPlan(plan: ChipPlan, open: OpenSource): Promise<Buffer> {
  const tiles = [];
  for (const t of plan.tiles) tiles.push({ source: await open(t.path), stretch: t.stretch });
  return renderChip({
    tiles,
    boundsWorld: plan.boundsWorld,
    gsdM: plan.gsdM,
    outline: plan.outline,
    outlineColour: plan.colour,
    widthPx: plan.widthPx,
  });
}

/** A stored file whole (a stamped photo: a few hundred KB), local or in the object store. */
async function readWhole(location: string): Promise<Buffer> {
  const src = await openByteSource(location);
  try {
    return Buffer.from(await src.read(0, src.size));
  } finally {
    await src.close();
  }
}

/** One sheet's record and the plans of its before/after chips and overview. */
export interface SheetPlan {
  record: ExportRecord;
  before: ChipPlan | null;
  after: ChipPlan | null;
  overview: ChipPlan | null;
  /** The case's stamped site photos, verification first (a second page shows them). */
  photos?: SheetPhoto[];
}

/** A stamped photo on a sheet: where the store keeps it, and its caption. */
export interface SheetPhoto {
  location: string;
  caption: string;
}

/** Before/after chips and an overview for each patch, cut from the registered imagery, one patch at a time. */
export async function* sheetImages(
  plans: SheetPlan[],
  open: OpenSource,
): AsyncGenerator<{ record: ExportRecord; images: SheetImages }> {
  const chip = async (plan: ChipPlan | null): Promise<Buffer | null> => {
    if (!plan) return null;
    try {
      // JPEG on the page: a PNG chip made a sheet about 520 KB, so 300 sheets were 150 MB
      return await sharp(await renderChipPlan(plan, open))
        .jpeg({ quality: SHEET_JPEG_QUALITY, mozjpeg: true })
        .toBuffer();
    } catch {
      return null; // a damaged tile leaves a blank frame on the sheet rather than no sheet
    }
  };
  for (const p of plans) {
    const [before, after, overview] = await Promise.all([chip(p.before), chip(p.after), chip(p.overview)]);
    const photos: { image: Buffer; caption: string }[] = [];
    for (const ph of p.photos ?? []) {
      // a photo the store cannot give back leaves its caption, said as missing
      const image = await readWhole(ph.location).catch(() => null);
      photos.push({ image: image ?? Buffer.alloc(0), caption: image ? ph.caption : `${ph.caption}（文件缺失）` });
    }
    yield { record: p.record, images: { before, after, overview, photos } };
  }
}
