/**
 * A month's low-resolution preview of one image: the web map draws zoom levels coarser than
 * 2 m/px from it, so the first view of a district is imagery, not grey, without reading millions
 * of full-resolution pixels per map tile. Built once at registration: the image is read in strips
 * of whole rows and each `factor`×`factor` block of stretched 8-bit pixels is averaged (nodata
 * pixels left out), so the read costs one decode of the image and memory of one strip.
 */
import type { GeoTransform } from '../geotransform.ts';
import { modelInputLuts, normaliseBands, validMask, type BandStretch } from '../raster.normalise.ts';
import type { TileSource } from '../raster.source.ts';
import { encodeGeoTiff } from './geotiff.write.ts';

/** The preview's pixel size (m): 16 m map tiles read 1024² of it, 4 m tiles 256². */
const PREVIEW_RES_M = 4;
/** Preview rows read per strip: memory is 3 bands × width × factor × this × 4 bytes. */
const STRIP_ROWS = 32;

export interface Preview {
  factor: number;
  resM: number;
  widthPx: number;
  heightPx: number;
}

/**
 * The preview of `src` (bands 0–2, through `stretch`) as the bytes of a 3-band 8-bit GeoTIFF with
 * nodata 0 (a valid pixel is at least 1), or null when the image is already as coarse as a
 * preview (factor < 2).
 */
export async function makePreview(
  src: TileSource,
  stretch: BandStretch | null,
  gsdM: number,
): Promise<(Preview & { bytes: Uint8Array }) | null> {
  const factor = Math.round(PREVIEW_RES_M / gsdM);
  if (factor < 2) return null;
  const { widthPx, heightPx, geoTransform: gt } = src.info;
  const w = Math.ceil(widthPx / factor);
  const h = Math.ceil(heightPx / factor);
  const out = new Uint8Array(w * h * 3);
  const bandIdx = [0, 1, 2];
  // 8/16-bit samples go through a table from raw value to stretched 8-bit; others through normaliseBands
  const luts = modelInputLuts(src.info, bandIdx, stretch, [0, 0, 0], [1, 1, 1])?.map((l) =>
    Uint8Array.from(l, (v) => Math.round(v * 255)),
  );
  const block = Uint32Array.from({ length: widthPx }, (_, c) => (c / factor) | 0);
  const sums = new Uint32Array(w * 3);
  const counts = new Uint32Array(w);
  for (let py0 = 0; py0 < h; py0 += STRIP_ROWS) {
    const y = py0 * factor;
    const rows = Math.min(heightPx, (py0 + STRIP_ROWS) * factor) - y;
    const raw = await src.readWindow({ x: 0, y, width: widthPx, height: rows }, bandIdx);
    let bytes: Uint8Array[];
    let valid: Uint8Array | null;
    if (luts) {
      valid = validMask(src.info, raw);
      bytes = raw.map((band, b) => {
        const lut = luts[b];
        const o = new Uint8Array(band.length);
        for (let i = 0; i < band.length; i++) o[i] = lut[band[i]];
        return o;
      });
    } else {
      const n = normaliseBands(src.info, raw, stretch, bandIdx);
      valid = n.valid;
      bytes = n.bands.map((band) => Uint8Array.from(band, (v) => Math.round(v * 255)));
    }
    const [r0, g0, b0] = bytes;
    for (let pr = 0; pr * factor < rows; pr++) {
      sums.fill(0);
      counts.fill(0);
      for (let r = pr * factor; r < Math.min(rows, (pr + 1) * factor); r++) {
        const row = r * widthPx;
        for (let c = 0; c < widthPx; c++) {
          const i = row + c;
          if (valid && !valid[i]) continue;
          const p = block[c];
          counts[p]++;
          sums[p * 3] += r0[i];
          sums[p * 3 + 1] += g0[i];
          sums[p * 3 + 2] += b0[i];
        }
      }
      const o = (py0 + pr) * w * 3;
      for (let p = 0; p < w; p++) {
        if (!counts[p]) continue;
        for (let b = 0; b < 3; b++) out[o + p * 3 + b] = Math.max(1, Math.round(sums[p * 3 + b] / counts[p]));
      }
    }
  }
  const previewGt: GeoTransform = [gt[0], gt[1] * factor, gt[2] * factor, gt[3], gt[4] * factor, gt[5] * factor];
  const bytes = encodeGeoTiff({
    widthPx: w,
    heightPx: h,
    samples: out,
    bands: 3,
    crs: src.info.crs,
    geoTransform: previewGt,
    nodata: 0,
  });
  return { factor, resM: gsdM * factor, widthPx: w, heightPx: h, bytes: new Uint8Array(bytes) };
}
