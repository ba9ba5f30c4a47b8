/**
 * Morphological opening of a 0/1 mask by a (2r+1)² square: what stays is every pixel some fully
 * foreground square covers. It removes slivers, spurs and necks narrower than 2r+1 pixels and
 * keeps everything wider unchanged — on pixel outlines the same as PostGIS's
 * ST_Buffer(ST_Buffer(g, -r·gsd, 'join=mitre'), r·gsd, 'join=mitre'), at a small fraction of its
 * cost, so the diff buffers only where it cut legal footprints out (sql/diff/candidates.sql).
 *
 * Beyond the mask's edges counts as foreground for the erosion: a part of a scene is opened as if
 * its neighbours continued whatever crosses the seam, so a building cut by a seam is not worn
 * away at the cut (the merged building is opened once its pieces meet). Separable, run-based:
 * O(pixels) whatever r.
 */

/** Opens `mask` (0 background, non-zero foreground) in place by a (2r+1)² square; r = 0 leaves it. */
export function openMask(mask: Uint8Array, widthPx: number, heightPx: number, radiusPx: number): void {
  if (radiusPx <= 0) return;
  const lineBuf = new Uint8Array(Math.max(widthPx, heightPx));
  // erosion: rows, then columns
  for (let y = 0; y < heightPx; y++) erodeLine(mask, y * widthPx, 1, widthPx, radiusPx, lineBuf);
  for (let x = 0; x < widthPx; x++) erodeLine(mask, x, widthPx, heightPx, radiusPx, lineBuf);
  // dilation: rows, then columns
  for (let y = 0; y < heightPx; y++) dilateLine(mask, y * widthPx, 1, widthPx, radiusPx, lineBuf);
  for (let x = 0; x < widthPx; x++) dilateLine(mask, x, widthPx, heightPx, radiusPx, lineBuf);
}

/**
 * Copies one line of the mask (from `start`, every `step`, `n` pixels) into `buf` and calls
 * `run(s, e)` for each run [s, e) of foreground pixels in it, so `run` may rewrite the line.
 */
function forEachRun(
  m: Uint8Array,
  start: number,
  step: number,
  n: number,
  buf: Uint8Array,
  run: (s: number, e: number) => void,
): void {
  for (let i = 0, o = start; i < n; i++, o += step) buf[i] = m[o] ? 1 : 0;
  for (let i = 0; i < n;) {
    if (!buf[i]) {
      i++;
      continue;
    }
    let e = i;
    while (e < n && buf[e]) e++;
    run(i, e);
    i = e;
  }
}

/** Keeps a pixel of a run only when the run reaches r pixels past it on both sides (or the line's end). */
function erodeLine(m: Uint8Array, start: number, step: number, n: number, r: number, buf: Uint8Array): void {
  forEachRun(m, start, step, n, buf, (s, e) => {
    // pixels within r of an inner end go
    const lo = s === 0 ? 0 : s + r;
    const hi = e === n ? n : e - r;
    for (let k = s, o = start + s * step; k < e; k++, o += step) m[o] = k >= lo && k < hi ? 1 : 0;
  });
}

/** Grows every run of the line by r pixels on both sides. */
function dilateLine(m: Uint8Array, start: number, step: number, n: number, r: number, buf: Uint8Array): void {
  forEachRun(m, start, step, n, buf, (s, e) => {
    const hi = Math.min(n, e + r);
    for (let k = Math.max(0, s - r), o = start + k * step; k < hi; k++, o += step) m[o] = 1;
  });
}
