/**
 * Run-length connected-component labelling of a binary mask, tracking both 4- and 8-connectivity.
 *
 * Runs (maximal horizontal spans of foreground in one row) are unioned with the runs of the row
 * above: overlapping spans join in 4-connectivity, spans that also touch only diagonally join in
 * 8-connectivity. Memory is proportional to the number of runs, not pixels.
 */
export interface MaskRuns {
  readonly width: number;
  readonly height: number;
  /** Run i covers pixels [startX[i], endX[i]) of row row[i]. */
  readonly startX: Int32Array;
  readonly endX: Int32Array;
  readonly row: Int32Array;
  /** Runs of row y are indices rowStart[y] .. rowStart[y + 1] - 1. */
  readonly rowStart: Int32Array;
  readonly count: number;
  /** Root run index of each run's 4-connected piece and 8-connected component. */
  readonly root4: Int32Array;
  readonly root8: Int32Array;
}

export function labelRuns(mask: Uint8Array, width: number, height: number): MaskRuns {
  if (mask.length !== width * height) throw new Error(`mask has ${mask.length} values, expected ${width} × ${height}`);
  let cap = 1024;
  let startX: Int32Array = new Int32Array(cap);
  let endX: Int32Array = new Int32Array(cap);
  let row: Int32Array = new Int32Array(cap);
  const rowStart = new Int32Array(height + 1);
  let n = 0;
  for (let y = 0; y < height; y++) {
    rowStart[y] = n;
    const base = y * width;
    let x = 0;
    while (x < width) {
      while (x < width && mask[base + x] === 0) x++;
      if (x >= width) break;
      const s = x;
      while (x < width && mask[base + x] !== 0) x++;
      if (n === cap) {
        cap *= 2;
        startX = grow(startX, cap);
        endX = grow(endX, cap);
        row = grow(row, cap);
      }
      startX[n] = s;
      endX[n] = x;
      row[n] = y;
      n++;
    }
  }
  rowStart[height] = n;
  const parent4 = new Int32Array(n);
  const parent8 = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    parent4[i] = i;
    parent8[i] = i;
  }
  for (let y = 1; y < height; y++) {
    let j = rowStart[y - 1];
    const jEnd = rowStart[y];
    for (let i = rowStart[y]; i < rowStart[y + 1]; i++) {
      // Skip runs above that end before this run can touch them, even diagonally.
      while (j < jEnd && endX[j] < startX[i]) j++;
      for (let k = j; k < jEnd && startX[k] <= endX[i]; k++) {
        union(parent8, i, k);
        if (startX[k] < endX[i] && startX[i] < endX[k]) union(parent4, i, k);
      }
    }
  }
  const root4 = new Int32Array(n);
  const root8 = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    root4[i] = find(parent4, i);
    root8[i] = find(parent8, i);
  }
  return {
    width,
    height,
    startX: startX.subarray(0, n),
    endX: endX.subarray(0, n),
    row: row.subarray(0, n),
    rowStart,
    count: n,
    root4,
    root8,
  };
}

/** Index of the run containing pixel (x, y), or -1 when the pixel is background. */
export function runAt(runs: MaskRuns, x: number, y: number): number {
  if (y < 0 || y >= runs.height) return -1;
  let lo = runs.rowStart[y];
  let hi = runs.rowStart[y + 1] - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (runs.endX[mid] <= x) lo = mid + 1;
    else if (runs.startX[mid] > x) hi = mid - 1;
    else return mid;
  }
  return -1;
}

function grow(a: Int32Array, cap: number): Int32Array {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}

function find(parent: Int32Array, i: number): number {
  while (parent[i] !== i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

function union(parent: Int32Array, a: number, b: number): void {
  const ra = find(parent, a);
  const rb = find(parent, b);
  if (ra === rb) return;
  // Keep the smaller index as root so roots are the first run in raster order (deterministic).
  if (ra < rb) parent[rb] = ra;
  else parent[ra] = rb;
}
