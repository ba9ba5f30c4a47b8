/**
 * The OpenLayers map of one month: imagery tiles of the month and its baseline month with a swipe
 * between them, the patches drawn by state, the selected patch highlighted, the phone's own position.
 * Knows nothing of the page.
 */
import OlMap from 'ol/Map.js';
import View from 'ol/View.js';
import TileLayer from 'ol/layer/Tile.js';
import VectorLayer from 'ol/layer/Vector.js';
import XYZ from 'ol/source/XYZ.js';
import VectorSource from 'ol/source/Vector.js';
import TileGrid from 'ol/tilegrid/TileGrid.js';
import GeoJSON from 'ol/format/GeoJSON.js';
import { Circle as CircleStyle, Fill, Stroke, Style, Text } from 'ol/style.js';
import { register } from 'ol/proj/proj4.js';
import { get as getProjection } from 'ol/proj.js';
import { getRenderPixel } from 'ol/render.js';
import { getCenter } from 'ol/extent.js';
import Feature from 'ol/Feature.js';
import type ImageTile from 'ol/ImageTile.js';
import type RenderEvent from 'ol/render/Event.js';
import { Circle, Point, type Geometry, type Polygon } from 'ol/geom.js';
import Draw from 'ol/interaction/Draw.js';
import type { FeatureLike } from 'ol/Feature.js';
import proj4 from 'proj4';
import { defaults as defaultControls, MousePosition, ScaleLine } from 'ol/control.js';
import { fromLonLat, toLonLat } from 'ol/proj.js';
import type { MapConfigBody, PatchFeatureCollection, PatchListItem, TownsBody } from '../../api/responses.ts';
import { showImage } from '../api.ts';
import { OVERDUE_COLOUR, STATUS_COLOUR } from '../labels.ts';

const EMPTY_GIF = 'data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==';

function patchStyle(selected: boolean) {
  const cache = new Map<string, Style>();
  const labelFill = new Fill({ color: '#fff' });
  const labelStroke = new Stroke({ color: '#000', width: 3 });
  return (f: FeatureLike, resolution: number): Style[] => {
    const p = f.getProperties() as PatchListItem;
    const key = `${p.status}|${!!p.overdue_since}|${selected}`;
    let s = cache.get(key);
    if (!s) {
      const colour = STATUS_COLOUR[p.status] ?? '#ff2d2d';
      s = new Style({
        stroke: new Stroke({
          color: selected ? '#ffd400' : p.overdue_since ? OVERDUE_COLOUR : colour,
          width: selected ? 4 : p.overdue_since ? 3.5 : 2.5,
          lineDash: p.overdue_since ? [8, 4] : undefined,
        }),
        fill: new Fill({ color: `${colour}33` }),
      });
      cache.set(key, s);
    }
    // the last part of the code as a label, each feature its own (styles above are shared)
    const label = new Style({
      text: new Text({
        text: String(p.code).slice(-4),
        font: '12px sans-serif',
        fill: labelFill,
        stroke: labelStroke,
        offsetY: resolution > 1 ? -14 : 0,
        overflow: true,
      }),
    });
    return [s, label];
  };
}

/** Town boundaries: a dashed line and the town's name, over the imagery and under the patches. */
const townStyle = (f: FeatureLike): Style =>
  new Style({
    stroke: new Stroke({ color: '#ffffff', width: 2, lineDash: [10, 6] }),
    text: new Text({
      text: String(f.get('name') ?? ''),
      font: 'bold 14px sans-serif',
      fill: new Fill({ color: '#fff' }),
      stroke: new Stroke({ color: '#16324f', width: 4 }),
      overflow: true,
    }),
  });

export interface PatchMap {
  map: OlMap;
  setTowns(fc: TownsBody): void;
  setPatches(fc: PatchFeatureCollection): void;
  /** Draws a further page of patches beside those drawn. */
  addPatches(fc: PatchFeatureCollection): void;
  /**
   * Highlight one patch (or none); `zoom` fits the view to it, beside the swipe divider (right of it where
   * there is room, else left), clear of the divider's handle and the swipe bar at the bottom.
   */
  select(code: string | null, zoom: boolean): void;
  /** The phone's position (lon/lat, WGS 84) with its accuracy in metres, drawn as 你在这里; null: none. `centre` moves the view there. */
  showHere(here: { lon: number; lat: number; accuracyM: number } | null, centre: boolean): void;
  /** The share of the view, from the left, that shows the baseline month (0–100). */
  setSwipe(percent: number): void;
  /**
   * Starts drawing an outline on the imagery: each tap adds a corner, a tap on the first corner (or a double
   * tap) closes it, and `done` gets it in lon/lat (EPSG:4326). Returns a function that stops drawing and
   * clears it.
   */
  drawOutline(done: (outline: { type: 'Polygon'; coordinates: number[][][] }) => void): () => void;
  /**
   * Moves the view (never closer in) so the outline just drawn lies clear of what covers part of the map:
   * `padding` in pixels from the top, right, bottom and left edges (the report's form on a phone is a
   * sheet along the foot).
   */
  revealOutline(padding: [number, number, number, number]): void;
  /** Calls back with the patch clicked (null: the map beside the patches) and the pixel clicked. */
  onClick(fn: (p: PatchListItem | null, pixel: number[]) => void): void;
  dispose(): void;
}

/** An outline being drawn for a report: yellow, dashed, its corners marked. */
const drawnStyle = [
  new Style({
    stroke: new Stroke({ color: '#ffd400', width: 3, lineDash: [6, 4] }),
    fill: new Fill({ color: 'rgba(255,212,0,0.15)' }),
    image: new CircleStyle({
      radius: 6,
      fill: new Fill({ color: '#ffd400' }),
      stroke: new Stroke({ color: '#000', width: 1 }),
    }),
  }),
];

/** 你在这里: a blue dot, and the circle its accuracy allows. */
const hereStyle = (f: FeatureLike) =>
  f.get('kind') === 'accuracy'
    ? new Style({
        fill: new Fill({ color: 'rgba(31,111,235,0.12)' }),
        stroke: new Stroke({ color: '#1f6feb', width: 1 }),
      })
    : new Style({
        image: new CircleStyle({
          radius: 8,
          fill: new Fill({ color: '#1f6feb' }),
          stroke: new Stroke({ color: '#fff', width: 3 }),
        }),
      });

export function patchMap(target: HTMLElement, cfg: MapConfigBody, month: string, swipe: number): PatchMap {
  const monthCfg = cfg.months.find((m) => m.month === month)!;
  const code = `EPSG:${cfg.srid}`;
  if (!getProjection(code)) {
    proj4.defs(code, cfg.proj4);
    register(proj4);
  }
  const projection = getProjection(code)!;
  const resolutions = [...cfg.tileGrid.resolutions];
  const tileGrid = new TileGrid({ origin: cfg.tileGrid.origin, resolutions, tileSize: cfg.tileGrid.tileSizePx });
  const imagery = (m: string) =>
    new TileLayer({
      source: new XYZ({
        projection,
        tileGrid,
        url: `/api/map/tiles/${m}/{z}/{x}/{y}.png`,
        transition: 0,
        tileLoadFunction: (tile, src) => {
          const img = (tile as ImageTile).getImage() as HTMLImageElement;
          showImage(img, src, EMPTY_GIF).catch(() => {
            img.src = 'data:,';
          });
        },
      }),
      maxResolution: cfg.maxImageryResolution * 1.01,
    });
  const after = imagery(month);
  const before = monthCfg.baselineMonth ? imagery(monthCfg.baselineMonth) : null;
  const source = new VectorSource<Feature<Geometry>>();
  const vector = new VectorLayer({ source, style: patchStyle(false) });
  const selected = new VectorSource<Feature<Geometry>>();
  const towns = new VectorSource<Feature<Geometry>>();
  const here = new VectorSource<Feature<Geometry>>();
  const drawn = new VectorSource<Feature<Geometry>>();
  const map = new OlMap({
    target,
    controls: defaultControls().extend([
      new ScaleLine({ units: 'metric' }),
      // the pointer's position in lon/lat (CGCS2000 ≈ WGS 84) and in the storage CRS
      new MousePosition({
        className: 'ol-mouse-position coordinates',
        coordinateFormat: (c) => {
          if (!c) return '';
          const [lon, lat] = toLonLat(c, projection);
          return `${lon.toFixed(6)}, ${lat.toFixed(6)} · ${code} ${c[0].toFixed(1)} ${c[1].toFixed(1)}`;
        },
      }),
    ]),
    layers: [
      after,
      ...(before ? [before] : []),
      new VectorLayer({ source: towns, style: townStyle }),
      vector,
      new VectorLayer({ source: selected, style: patchStyle(true) }),
      new VectorLayer({ source: here, style: hereStyle }),
      new VectorLayer({ source: drawn, style: drawnStyle }),
    ],
    view: new View({
      projection,
      center: getCenter(monthCfg.extent),
      resolution: 1,
      resolutions,
      constrainResolution: true,
    }),
  });
  (window as unknown as { __tubanMap: OlMap }).__tubanMap = map;
  map.getView().fit(monthCfg.extent, { padding: [20, 20, 20, 20] });
  let swipePercent = swipe;
  if (before) {
    // the baseline month is drawn only left of the swipe line
    before.on('prerender', (event: RenderEvent) => {
      const ctx = event.context as CanvasRenderingContext2D;
      const ratio = event.frameState?.pixelRatio ?? 1;
      const width = (ctx.canvas.width * (swipePercent / 100)) / ratio;
      const corners = [
        getRenderPixel(event, [0, 0]),
        getRenderPixel(event, [0, ctx.canvas.height]),
        getRenderPixel(event, [width, ctx.canvas.height]),
        getRenderPixel(event, [width, 0]),
      ];
      ctx.save();
      ctx.beginPath();
      ctx.moveTo(corners[0][0], corners[0][1]);
      for (const [x, y] of corners.slice(1)) ctx.lineTo(x, y);
      ctx.closePath();
      ctx.clip();
    });
    before.on('postrender', (event: RenderEvent) => (event.context as CanvasRenderingContext2D).restore());
  }
  const format = new GeoJSON({ dataProjection: projection, featureProjection: projection });
  return {
    map,
    setTowns(fc) {
      towns.clear();
      towns.addFeatures(format.readFeatures(fc) as Feature<Geometry>[]);
    },
    setPatches(fc) {
      source.clear();
      source.addFeatures(format.readFeatures(fc) as Feature<Geometry>[]);
    },
    addPatches(fc) {
      source.addFeatures(format.readFeatures(fc) as Feature<Geometry>[]);
    },
    select(codeSel, zoom) {
      selected.clear();
      const f = codeSel ? source.getFeatureById(codeSel) : null;
      if (!f) return;
      selected.addFeature(f.clone());
      if (!zoom) return;
      // the patch beside the divider, never under it or its handle: the line is where the two months meet
      const [w] = map.getSize() ?? [0, 0];
      const line = before ? (w * swipePercent) / 100 : -Infinity;
      const side = 24;
      const padding =
        line === -Infinity || line < 0 || line > w
          ? [60, 60, 130, 60]
          : w - line >= w * 0.35
            ? [60, 40, 130, line + side]
            : [60, w - line + side, 130, 40];
      map.getView().fit(f.getGeometry()!.getExtent(), {
        padding,
        maxZoom: resolutions.length - 2,
        duration: 250,
      });
    },
    showHere(pos, centre) {
      here.clear();
      if (!pos) return;
      const at = fromLonLat([pos.lon, pos.lat], projection);
      here.addFeatures([
        new Feature({ geometry: new Circle(at, pos.accuracyM), kind: 'accuracy' }),
        new Feature({ geometry: new Point(at), kind: 'here' }),
      ]);
      if (centre) map.getView().animate({ center: at, duration: 250 });
    },
    setSwipe(percent) {
      swipePercent = percent;
      map.render();
    },
    drawOutline(done) {
      drawn.clear();
      const draw = new Draw({ source: drawn, type: 'Polygon', style: drawnStyle });
      draw.on('drawend', (e) => {
        map.removeInteraction(draw);
        const rings = (e.feature.getGeometry() as Polygon)
          .getCoordinates()
          .map((ring) => ring.map((c) => toLonLat(c, projection).map((v) => Math.round(v * 1e8) / 1e8)));
        done({ type: 'Polygon', coordinates: rings });
      });
      map.addInteraction(draw);
      return () => {
        map.removeInteraction(draw);
        drawn.clear();
      };
    },
    revealOutline(padding) {
      // the map may have just changed size (on a phone it grows while a report is made): OpenLayers would
      // learn it only after this frame, and fit the outline into the old size
      map.updateSize();
      const extent = drawn.getExtent();
      if (!extent || drawn.getFeatures().length === 0 || !Number.isFinite(extent[0])) return;
      map.getView().fit(extent, { padding, maxZoom: map.getView().getZoom(), duration: 250 });
    },
    onClick(fn) {
      map.on('singleclick', (e) => {
        const f = map.forEachFeatureAtPixel(e.pixel, (x) => x, { layerFilter: (l) => l === vector });
        fn(f ? (f.getProperties() as PatchListItem) : null, e.pixel);
      });
    },
    dispose() {
      map.setTarget(undefined);
    },
  };
}
