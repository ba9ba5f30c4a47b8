import { convex } from '@turf/convex';
import { featureCollection, point } from '@turf/helpers';
import { traceMask } from './mask.trace.ts';

/**
 * Building-aware outlines for 两违 patches. A change region traced from pixels has staircase
 * edges wherever the building is not aligned with the image grid. For a building-like polygon:
 *
 * - `rectangle`: when it fills its minimum rotated rectangle closely (≥ rectFill), that rectangle,
 *   each side moved in equally so the area stays the polygon's;
 * - `orthogonal`: otherwise, the outline redrawn at right angles in the building's own frame (the
 *   minimum rotated rectangle's orientation): rasterised there at the imagery's pixel size, closed
 *   and opened by one pixel to drop staircase teeth, and traced again.
 *
 * Either result is used only when it changes the area by at most maxAreaChange (a fraction);
 * polygons with holes, several parts, or too few pixels are left as they are. Coordinates are in a
 * projected CRS in metres.
 */
export interface RegulariseOptions {
  /** Pixel size of the imagery (m); the orthogonal outline is drawn at this resolution. */
  gsdM: number;
  /** Smallest area / rectangle area for the rectangle. Default 0.85. */
  rectFill?: number;
  /** Largest |area change| / area accepted. Default 0.10. */
  maxAreaChange?: number;
}

export interface Regularised {
  /** Rings of the polygon to use (the input when method is null). */
  rings: number[][][];
  method: 'rectangle' | 'orthogonal' | null;
  /** (new area − old area) / old area. */
  areaChange: number;
  /** Why it was left alone (method null). */
  reason?: string;
}

type Pt = [number, number];

export function ringArea(ring: number[][]): number {
  let a = 0;
  for (let i = 0; i + 1 < ring.length; i++) a += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
  return a / 2;
}

/** Minimum-area rectangle around the points (rotating calipers over the hull's edge directions). */
export function minRotatedRect(points: Pt[]): { angle: number; area: number; corners: Pt[] } {
  const h = convex(featureCollection(points.map((p) => point(p))));
  const hull = (h ? h.geometry.coordinates[0].slice(0, -1) : points) as Pt[];
  let best = { angle: 0, area: Infinity, corners: [] as Pt[] };
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i],
      b = hull[(i + 1) % hull.length];
    const angle = Math.atan2(b[1] - a[1], b[0] - a[0]);
    const c = Math.cos(-angle),
      s = Math.sin(-angle);
    let minX = Infinity,
      minY = Infinity,
      maxX = -Infinity,
      maxY = -Infinity;
    for (const [x, y] of hull) {
      const rx = x * c - y * s,
        ry = x * s + y * c;
      minX = Math.min(minX, rx);
      maxX = Math.max(maxX, rx);
      minY = Math.min(minY, ry);
      maxY = Math.max(maxY, ry);
    }
    const area = (maxX - minX) * (maxY - minY);
    if (area < best.area) {
      const back = ([x, y]: Pt): Pt => [
        x * Math.cos(angle) - y * Math.sin(angle),
        x * Math.sin(angle) + y * Math.cos(angle),
      ];
      best = { angle, area, corners: [back([minX, minY]), back([maxX, minY]), back([maxX, maxY]), back([minX, maxY])] };
    }
  }
  return best;
}

function closeRing(ring: Pt[]): number[][] {
  const out = ring.map((p) => [p[0], p[1]]);
  out.push([ring[0][0], ring[0][1]]);
  return out;
}

/** Counter-clockwise, without repeated or collinear vertices. */
function cleanRing(ring: number[][]): number[][] {
  const pts = ring.slice(0, -1);
  const out: number[][] = [];
  for (let i = 0; i < pts.length; i++) {
    const prev = pts[(i - 1 + pts.length) % pts.length],
      cur = pts[i],
      next = pts[(i + 1) % pts.length];
    const cross = (cur[0] - prev[0]) * (next[1] - cur[1]) - (cur[1] - prev[1]) * (next[0] - cur[0]);
    if (Math.abs(cross) > 1e-9) out.push(cur);
  }
  out.push(out[0]);
  return ringArea(out) < 0 ? out.reverse() : out;
}

export function regularise(rings: number[][][], opts: RegulariseOptions): Regularised {
  const rectFill = opts.rectFill ?? 0.85;
  const maxChange = opts.maxAreaChange ?? 0.1;
  const keep = (reason: string): Regularised => ({ rings, method: null, areaChange: 0, reason });
  if (rings.length !== 1) return keep('has holes');
  const outer = rings[0];
  const area = Math.abs(ringArea(outer));
  if (area < 16 * opts.gsdM * opts.gsdM) return keep('too small');
  const rect = minRotatedRect(outer.slice(0, -1) as Pt[]);
  if (area / rect.area >= rectFill) {
    // The rectangle around a pixel staircase sticks out by up to half a pixel on every side: move
    // each side in by the same δ so the rectangle keeps the polygon's area.
    const [p0, p1, , p3] = rect.corners;
    const L = Math.hypot(p1[0] - p0[0], p1[1] - p0[1]),
      W = Math.hypot(p3[0] - p0[0], p3[1] - p0[1]);
    const delta = (2 * (L + W) - Math.sqrt(4 * (L + W) ** 2 - 16 * (L * W - area))) / 8;
    const ux = [(p1[0] - p0[0]) / L, (p1[1] - p0[1]) / L],
      uy = [(p3[0] - p0[0]) / W, (p3[1] - p0[1]) / W];
    const at = (a: number, b: number): Pt => [p0[0] + ux[0] * a + uy[0] * b, p0[1] + ux[1] * a + uy[1] * b];
    const shrunk = [at(delta, delta), at(L - delta, delta), at(L - delta, W - delta), at(delta, W - delta)];
    const ring = cleanRing(closeRing(shrunk));
    const change = (Math.abs(ringArea(ring)) - area) / area;
    if (Math.abs(change) <= maxChange) return { rings: [ring], method: 'rectangle', areaChange: change };
  }
  // Orthogonal outline in the rectangle's frame.
  const cx = outer.reduce((s, p) => s + p[0], 0) / outer.length,
    cy = outer.reduce((s, p) => s + p[1], 0) / outer.length;
  const c = Math.cos(-rect.angle),
    s = Math.sin(-rect.angle);
  const rotated = outer.map(([x, y]) => [(x - cx) * c - (y - cy) * s, (x - cx) * s + (y - cy) * c]);
  const g = opts.gsdM;
  const minX = Math.min(...rotated.map((p) => p[0])) - 2 * g,
    maxX = Math.max(...rotated.map((p) => p[0])) + 2 * g;
  const minY = Math.min(...rotated.map((p) => p[1])) - 2 * g,
    maxY = Math.max(...rotated.map((p) => p[1])) + 2 * g;
  const w = Math.ceil((maxX - minX) / g),
    h = Math.ceil((maxY - minY) / g);
  if (w * h > 4_000_000) return keep('too large to redraw');
  let mask: Uint8Array = new Uint8Array(w * h);
  // Scanline fill at cell centres (even-odd rule); row 0 is the top (largest y).
  for (let r = 0; r < h; r++) {
    const y = maxY - (r + 0.5) * g;
    const xs: number[] = [];
    for (let i = 0; i + 1 < rotated.length; i++) {
      const [x1, y1] = rotated[i],
        [x2, y2] = rotated[i + 1];
      if ((y1 <= y && y2 > y) || (y2 <= y && y1 > y)) xs.push(x1 + ((y - y1) * (x2 - x1)) / (y2 - y1));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const c0 = Math.max(0, Math.ceil((xs[k] - minX) / g - 0.5)),
        c1 = Math.min(w - 1, Math.floor((xs[k + 1] - minX) / g - 0.5));
      for (let col = c0; col <= c1; col++) mask[r * w + col] = 1;
    }
  }
  mask = erode(dilate(mask, w, h), w, h); // closing: fill the staircase's notches
  mask = dilate(erode(mask, w, h), w, h); // opening: cut its teeth
  const comps = traceMask(mask, w, h);
  if (!comps.length) return keep('vanished when redrawn');
  const main = comps.reduce((a, b) => (b.pixelCount > a.pixelCount ? b : a));
  if (main.polygons.length !== 1) return keep('split when redrawn');
  const back = ([col, row]: number[]) => {
    const x = minX + col * g,
      y = maxY - row * g;
    return [
      x * Math.cos(rect.angle) - y * Math.sin(rect.angle) + cx,
      x * Math.sin(rect.angle) + y * Math.cos(rect.angle) + cy,
    ];
  };
  const ring = cleanRing(main.polygons[0][0].map(back));
  const change = (Math.abs(ringArea(ring)) - area) / area;
  if (Math.abs(change) > maxChange)
    return { ...keep(`area would change by ${(change * 100).toFixed(1)} %`), areaChange: change };
  return { rings: [ring], method: 'orthogonal', areaChange: change };
}

function dilate(m: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) {
      let v = 0;
      for (let dr = -1; dr <= 1 && !v; dr++)
        for (let dc = -1; dc <= 1; dc++) {
          const rr = r + dr,
            cc = c + dc;
          if (rr >= 0 && cc >= 0 && rr < h && cc < w && m[rr * w + cc]) {
            v = 1;
            break;
          }
        }
      out[r * w + c] = v;
    }
  return out;
}

function erode(m: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) {
      let v = 1;
      for (let dr = -1; dr <= 1 && v; dr++)
        for (let dc = -1; dc <= 1; dc++) {
          const rr = r + dr,
            cc = c + dc;
          if (rr < 0 || cc < 0 || rr >= h || cc >= w || !m[rr * w + cc]) {
            v = 0;
            break;
          }
        }
      out[r * w + c] = v;
    }
  return out;
}
