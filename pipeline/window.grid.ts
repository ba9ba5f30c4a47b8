/** A pixel rectangle: top-left corner and size, in pixels. */
export interface WindowPx {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Window starts along one axis, all windows of one size. */
export interface AxisWindows {
  starts: number[];
  size: number;
}

/**
 * Windows along one axis: as few as cover [0, length) with at most `maxSize` each and at least
 * `overlap` between neighbours, all of one size (rounded up to a multiple of `multiple`, so a
 * model that downsamples by 16 sees whole cells) and spread evenly, the first flush with the
 * start and the last with the end. A length that fits in one window gets one window of that length.
 */
export function axisWindows(length: number, maxSize: number, overlap: number, multiple = 1): AxisWindows {
  if (length <= 0) return { starts: [], size: 0 };
  if (maxSize >= length) return { starts: [0], size: length };
  if (overlap < 0 || overlap >= maxSize)
    throw new Error(`overlap ${overlap} px must be in [0, ${maxSize}) for window size ${maxSize} px`);
  const n = Math.ceil((length - overlap) / (maxSize - overlap));
  const fit = Math.ceil((length + (n - 1) * overlap) / n);
  const size = Math.min(maxSize, Math.ceil(fit / multiple) * multiple);
  const step = (length - size) / (n - 1);
  return { starts: Array.from({ length: n }, (_, i) => Math.round(i * step)), size };
}

/** Start offsets along one axis so windows of `size` with `overlap` cover [0, length) and the last is flush with the end. */
export function axisStarts(length: number, size: number, overlap: number): number[] {
  if (length <= 0) return [];
  if (size >= length) return [0];
  if (overlap < 0 || overlap >= size)
    throw new Error(`overlap ${overlap} px must be in [0, ${size}) for window size ${size} px`);
  const step = size - overlap;
  const starts: number[] = [];
  for (let s = 0; s + size < length; s += step) starts.push(s);
  starts.push(length - size);
  return starts;
}

/** How a model is fed windows (the model manifest's fields). */
export interface WindowSpec {
  tileSizePx: number;
  overlapPx: number;
  maxWindowPx?: number;
}

/**
 * The windows a model gets along one axis. With maxWindowPx: as few as cover the axis, up to that
 * size, spread evenly (axisWindows, multiples of 16 px). Without it: windows of exactly tileSizePx,
 * the last flush with the end (axisStarts), for models with window-wide statistics.
 */
function modelAxis(length: number, spec: WindowSpec): AxisWindows {
  if (spec.maxWindowPx === undefined)
    return { starts: axisStarts(length, spec.tileSizePx, spec.overlapPx), size: Math.min(spec.tileSizePx, length) };
  return axisWindows(length, Math.max(spec.maxWindowPx, spec.tileSizePx), spec.overlapPx, 16);
}

/**
 * What the model is fed along an axis whose windows are `size` long. A model with maxWindowPx halves
 * its input four times (siam-unet-lite): fed a length that is not a multiple of 16, its coarse
 * features are stretched back by a ratio that is not exactly 2 and land up to a cell off, and the
 * outlines slip towards the far edge (`tuban eval` on the 8 LEVIR validation pairs cut to 1000 px:
 * pixel F1 0.807 unpadded, 0.825 padded). Windows of any other size (one window over a whole axis,
 * or a maxWindowPx that is not a multiple of 16) are fed padded to the next multiple, their last
 * pixel repeated (padWindow), and the padding's answers are dropped.
 */
export function modelInputSize(size: number, spec: WindowSpec): number {
  return spec.maxWindowPx === undefined ? size : Math.ceil(size / 16) * 16;
}

/**
 * The windows that tile a raster of widthPx × heightPx for a model, all of one size, row-major,
 * each with its column i and row j in the grid; and the two axes they come from.
 */
export function windowGrid(
  widthPx: number,
  heightPx: number,
  spec: WindowSpec,
): { xs: AxisWindows; ys: AxisWindows; windows: (WindowPx & { i: number; j: number })[] } {
  const xs = modelAxis(widthPx, spec);
  const ys = modelAxis(heightPx, spec);
  const windows: (WindowPx & { i: number; j: number })[] = [];
  for (const [j, y] of ys.starts.entries())
    for (const [i, x] of xs.starts.entries()) windows.push({ x, y, width: xs.size, height: ys.size, i, j });
  return { xs, ys, windows };
}

/**
 * Blending weights for one window, so overlapping predictions fade into each other instead of
 * meeting at a hard seam. Weight rises linearly over `rampPx` from each window edge that lies
 * inside the raster; edges on the raster border keep full weight (no neighbour to blend with).
 * Never zero, so every pixel keeps a defined value.
 */
export function blendWeights(
  win: WindowPx,
  rasterWidthPx: number,
  rasterHeightPx: number,
  rampPx: number,
): Float32Array {
  const { wx, wy } = blendRamps(win, rasterWidthPx, rasterHeightPx, rampPx);
  const out = new Float32Array(win.width * win.height);
  for (let r = 0; r < win.height; r++) for (let c = 0; c < win.width; c++) out[r * win.width + c] = wx[c] * wy[r];
  return out;
}

/** The blending weights of a window as two ramps: weight at (row, col) = wy[row] × wx[col]. */
export function blendRamps(
  win: WindowPx,
  rasterWidthPx: number,
  rasterHeightPx: number,
  rampPx: number,
): { wx: Float32Array; wy: Float32Array } {
  return {
    wx: axisRamp(win.x, win.width, rasterWidthPx, rampPx),
    wy: axisRamp(win.y, win.height, rasterHeightPx, rampPx),
  };
}

function axisRamp(start: number, size: number, length: number, rampPx: number): Float32Array {
  const w = new Float32Array(size).fill(1);
  if (rampPx <= 0) return w;
  const innerStart = start > 0;
  const innerEnd = start + size < length;
  for (let i = 0; i < size; i++) {
    let v = 1;
    if (innerStart) v = Math.min(v, (i + 0.5) / rampPx);
    if (innerEnd) v = Math.min(v, (size - i - 0.5) / rampPx);
    w[i] = Math.max(1e-3, Math.min(1, v));
  }
  return w;
}

/** A window range of a scene that one pair of stage jobs processes: numbered row-major from 0. */
export interface ScenePart extends WindowPx {
  part: number;
}

/**
 * A scene cut into parts of at most partPx × partPx (edge parts smaller), row-major. Parts share
 * edges exactly on the pixel grid, so polygons cut at a part edge are merged back without slivers.
 */
export function partGrid(widthPx: number, heightPx: number, partPx: number): ScenePart[] {
  if (!Number.isInteger(partPx) || partPx < 64) throw new Error(`part size ${partPx} px must be a whole number ≥ 64`);
  const out: ScenePart[] = [];
  for (let y = 0; y < heightPx; y += partPx) {
    for (let x = 0; x < widthPx; x += partPx) {
      out.push({
        part: out.length,
        x,
        y,
        width: Math.min(partPx, widthPx - x),
        height: Math.min(partPx, heightPx - y),
      });
    }
  }
  return out;
}
