import { labelRuns, runAt, type MaskRuns } from './mask.runs.ts';
import { arrayPool } from './array.pool.ts';

/**
 * Raster mask → polygons, in pixel-corner coordinates (x right, y down; (0,0) is the outer corner
 * of the first pixel).
 *
 * Connectivity follows gdal_polygonize -8: foreground pixels touching only at a corner belong to
 * the same feature; background is 4-connected, so a diagonal gap in a ring of foreground still
 * encloses a hole. Each feature is one 8-connected component and becomes a Polygon or, when its
 * parts meet only at corners, a MultiPolygon. Rings are always simple, so the output is valid
 * under OGC rules (ST_IsValid):
 *  - the boundary is walked along pixel edges with the foreground on the left;
 *  - at a corner where two foreground pixels meet diagonally, the walk joins them when they are
 *    already one 4-connected piece (giving a shell plus a hole that touch at one point, which is
 *    valid) and keeps them apart otherwise (two polygons of a MultiPolygon that touch at a point).
 * Vertices are emitted only where the direction changes.
 */
export interface TracedComponent {
  /** Polygons of the component: each is [shell, ...holes], every ring closed (first point repeated). */
  polygons: number[][][][];
  /** Foreground pixels in the component (its exact area in pixels). */
  pixelCount: number;
  /** Sum of the optional per-pixel values over the component (e.g. change probability). */
  valueSum: number;
  /** Bounding box in pixel-corner coordinates [minX, minY, maxX, maxY]. */
  bbox: [number, number, number, number];
}

const E = 0,
  S = 1,
  W = 2,
  N = 3;
const LEFT = [N, E, S, W]; // left turn of E,S,W,N in a y-down raster
const RIGHT = [S, W, N, E];
const DX = [1, 0, -1, 0];
const DY = [0, 1, 0, -1];

export function traceMask(
  mask: Uint8Array,
  width: number,
  height: number,
  values?: Float32Array | Uint8Array,
): TracedComponent[] {
  const runs = labelRuns(mask, width, height);
  const fg = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] !== 0;
  const piece = (x: number, y: number) => runs.root4[runAt(runs, x, y)];
  const visited = arrayPool.take(Uint8Array, (height + 1) * width, true); // horizontal edges, each walked once

  // Candidate edge leaving vertex (vx, vy) in direction d: foreground on its left, background on its right.
  const canGo = (vx: number, vy: number, d: number): boolean => {
    switch (d) {
      case E:
        return fg(vx, vy - 1) && !fg(vx, vy);
      case S:
        return fg(vx, vy) && !fg(vx - 1, vy);
      case W:
        return fg(vx - 1, vy) && !fg(vx - 1, vy - 1);
      default:
        return fg(vx - 1, vy - 1) && !fg(vx, vy - 1);
    }
  };

  type Ring = { coords: number[]; piece: number; signedArea2: number };
  const rings: Ring[] = [];

  // Horizontal boundary edges are where a row differs from the row above. Rows are compared four
  // pixels at a time where the layout allows (most of a change mask is empty), then pixel by pixel.
  const words =
    width % 4 === 0 && mask.byteOffset % 4 === 0
      ? new Uint32Array(mask.buffer, mask.byteOffset, (width * height) / 4)
      : null;
  const wordsPerRow = width / 4;
  const traceEdge = (x: number, y: number) => {
    const above = y > 0 && mask[(y - 1) * width + x] !== 0;
    const below = y < height && mask[y * width + x] !== 0;
    if (above === below || visited[y * width + x]) return;
    const startHeading = above ? E : W;
    const startX = above ? x : x + 1;
    const owner = above ? piece(x, y - 1) : piece(x, y);
    const coords: number[] = [startX, y];
    let vx = startX,
      vy = y,
      h = startHeading;
    let area2 = 0;
    for (;;) {
      if (h === E) visited[vy * width + vx] = 1;
      else if (h === W) visited[vy * width + vx - 1] = 1;
      const nx = vx + DX[h],
        ny = vy + DY[h];
      area2 += vx * ny - nx * vy;
      vx = nx;
      vy = ny;
      const l = LEFT[h],
        r = RIGHT[h];
      const canL = canGo(vx, vy, l),
        canR = canGo(vx, vy, r);
      let next: number;
      if (canL && canR) {
        next = diagonalJoins(h, vx, vy, piece) ? r : l;
      } else if (canL) next = l;
      else if (canGo(vx, vy, h)) next = h;
      else next = r;
      if (vx === startX && vy === y && next === startHeading) break;
      if (next !== h) coords.push(vx, vy);
      h = next;
    }
    if (h === startHeading) coords.splice(0, 2); // start vertex lies mid-edge: not a corner
    coords.push(coords[0], coords[1]);
    rings.push({ coords, piece: owner, signedArea2: area2 });
  };
  for (let y = 0; y <= height; y++) {
    if (words && y > 0 && y < height) {
      const a = (y - 1) * wordsPerRow,
        b = y * wordsPerRow;
      for (let k = 0; k < wordsPerRow; k++) {
        if (words[a + k] === words[b + k]) continue;
        for (let x = k * 4; x < k * 4 + 4; x++) traceEdge(x, y);
      }
    } else {
      for (let x = 0; x < width; x++) traceEdge(x, y);
    }
  }
  arrayPool.give(visited);
  return assemble(rings, runs, values);
}

/**
 * At a pinch vertex, whether the pixel hugged on arrival and the diagonal foreground pixel
 * opposite it are one 4-connected piece (then the walk crosses over to keep the piece in one shell).
 */
function diagonalJoins(h: number, vx: number, vy: number, piece: (x: number, y: number) => number): boolean {
  switch (h) {
    case E:
      return piece(vx - 1, vy - 1) === piece(vx, vy);
    case S:
      return piece(vx, vy - 1) === piece(vx - 1, vy);
    case W:
      return piece(vx, vy) === piece(vx - 1, vy - 1);
    default:
      return piece(vx - 1, vy) === piece(vx, vy - 1);
  }
}

function assemble(
  rings: { coords: number[]; piece: number; signedArea2: number }[],
  runs: MaskRuns,
  values?: Float32Array | Uint8Array,
): TracedComponent[] {
  // In y-down pixel space, shells walked with foreground on the left have negative signed area.
  const shellOf = new Map<number, number[]>();
  const holesOf = new Map<number, number[][]>();
  for (const ring of rings) {
    if (ring.signedArea2 < 0) shellOf.set(ring.piece, ring.coords);
    else {
      const list = holesOf.get(ring.piece);
      if (list) list.push(ring.coords);
      else holesOf.set(ring.piece, [ring.coords]);
    }
  }
  const byComponent = new Map<number, TracedComponent>();
  const piecesOf = new Map<number, number[]>();
  for (let i = 0; i < runs.count; i++) {
    const c = runs.root8[i];
    let comp = byComponent.get(c);
    if (!comp) {
      comp = { polygons: [], pixelCount: 0, valueSum: 0, bbox: [Infinity, Infinity, -Infinity, -Infinity] };
      byComponent.set(c, comp);
      piecesOf.set(c, []);
    }
    const len = runs.endX[i] - runs.startX[i];
    comp.pixelCount += len;
    if (values) {
      const base = runs.row[i] * runs.width;
      for (let x = runs.startX[i]; x < runs.endX[i]; x++) comp.valueSum += values[base + x];
    }
    const b = comp.bbox;
    b[0] = Math.min(b[0], runs.startX[i]);
    b[1] = Math.min(b[1], runs.row[i]);
    b[2] = Math.max(b[2], runs.endX[i]);
    b[3] = Math.max(b[3], runs.row[i] + 1);
    if (runs.root4[i] === i) piecesOf.get(c)!.push(i);
  }
  const out: TracedComponent[] = [];
  for (const [c, comp] of byComponent) {
    for (const p of piecesOf.get(c)!) {
      const shell = shellOf.get(p);
      if (!shell) throw new Error(`internal: 4-connected piece at run ${p} has no shell ring`);
      comp.polygons.push([toPairs(shell), ...(holesOf.get(p) ?? []).map(toPairs)]);
    }
    out.push(comp);
  }
  return out;
}

function toPairs(flat: number[]): number[][] {
  const out: number[][] = Array.from({ length: flat.length / 2 });
  for (let i = 0; i < flat.length; i += 2) out[i / 2] = [flat[i], flat[i + 1]];
  return out;
}
