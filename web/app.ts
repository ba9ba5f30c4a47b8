/**
 * tuban web app: the month's patches on a map over the month's own imagery (before/after swipe),
 * the patch list and patch pages with the actions a role may take, the supervisor board and the
 * batch page. Plain TypeScript and OpenLayers, bundled by server/web.ts; every request goes to
 * the same API with the user's token, so the web app sees exactly what the API lets the user see.
 */
import 'ol/ol.css';
import './app.css';
import OlMap from 'ol/Map.js';
import View from 'ol/View.js';
import TileLayer from 'ol/layer/Tile.js';
import VectorLayer from 'ol/layer/Vector.js';
import XYZ from 'ol/source/XYZ.js';
import VectorSource from 'ol/source/Vector.js';
import TileGrid from 'ol/tilegrid/TileGrid.js';
import GeoJSON from 'ol/format/GeoJSON.js';
import { Fill, Stroke, Style, Text } from 'ol/style.js';
import { register } from 'ol/proj/proj4.js';
import { get as getProjection } from 'ol/proj.js';
import { getRenderPixel } from 'ol/render.js';
import { getCenter } from 'ol/extent.js';
import type Feature from 'ol/Feature.js';
import type ImageTile from 'ol/ImageTile.js';
import type RenderEvent from 'ol/render/Event.js';
import type { Geometry } from 'ol/geom.js';
import proj4 from 'proj4';

// ---------------------------------------------------------------------------------------------
// API

interface User {
  id: number;
  username: string;
  displayName: string;
  role: 'analyst' | 'town' | 'supervisor' | 'admin';
  townCode: string | null;
}
interface MapConfig {
  srid: number;
  proj4: string;
  maxImageryResolution: number;
  tileGrid: { origin: [number, number]; tileSizePx: number; resolutions: number[] };
  months: {
    month: string;
    baselineMonth: string | null;
    extent: [number, number, number, number];
    gsdM: number;
    tiles: number;
  }[];
}
type Row = Record<string, any>;

const TOKEN_KEY = 'tuban.token';
let token = localStorage.getItem(TOKEN_KEY);
let me: User | null = null;
let config: MapConfig | null = null;
let meta: { actions: Record<string, { label: string; from: string[]; roles: string[]; schema: JsonSchema }> } | null =
  null;

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function api<T = any>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  if (init.body && typeof init.body === 'string') headers.set('content-type', 'application/json');
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401 && path !== '/api/login') {
    signOut();
    throw new ApiError(401, 'signed out');
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({ message: res.statusText }));
    throw new ApiError(res.status, body.message ?? res.statusText);
  }
  if (res.status === 204) return null as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? res.json() : res.blob()) as Promise<T>;
}

/** An image or file behind the token, as an object URL (null for 204: nothing to show). Release it with URL.revokeObjectURL. */
async function blobUrl(path: string): Promise<string | null> {
  const b = await api<Blob | null>(path);
  return b ? URL.createObjectURL(b) : null;
}

/** Show an image behind the token; its object URL is released once the image has it. */
async function showImage(img: HTMLImageElement, path: string, empty: string): Promise<boolean> {
  const url = await blobUrl(path);
  if (!url) {
    if (empty) img.src = empty;
    return false;
  }
  const release = () => URL.revokeObjectURL(url);
  img.addEventListener('load', release, { once: true });
  img.addEventListener('error', release, { once: true });
  img.src = url;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document) =>
  root.querySelector(sel) as T;
/** A value as text: '' for null and undefined, objects as JSON (never "[object Object]"). */
const text = (v: unknown): string =>
  v === null || v === undefined
    ? ''
    : typeof v === 'object'
      ? JSON.stringify(v)
      : String(v as string | number | boolean);
/** A form field's text ('' for a missing field or a file). */
const field = (form: HTMLFormElement | EventTarget | null, name: string): string => {
  const v = new FormData(form as HTMLFormElement).get(name);
  return typeof v === 'string' ? v : '';
};
/** An event listener that runs async work; a failure not handled inside reaches the browser's error reporting. */
const on = <K extends keyof HTMLElementEventMap>(
  el: HTMLElement,
  type: K,
  handler: (e: HTMLElementEventMap[K]) => Promise<void>,
) => el.addEventListener(type, (e) => void handler(e).catch(reportError));
const esc = (v: unknown) =>
  text(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (v: unknown, digits = 1) =>
  v === null || v === undefined || v === '' ? '–' : typeof v === 'number' ? v.toFixed(digits) : esc(v);
const main = () => $('#main');

const STATUS_LABEL: Record<string, string> = {
  detected: '待核查 detected',
  dispatched: '已下发 dispatched',
  dismissed: '已排除 dismissed',
  illegal: '违法 illegal',
  legal: '合法 legal',
  false_change: '伪变化 false change',
  pre_existing: '原有 pre-existing',
  rectifying: '整改中 rectifying',
  rectified: '已整改 rectified',
  closed: '已销号 closed',
  merged: '已合并 merged',
  split: '已拆分 split',
};
const STATUS_COLOUR: Record<string, string> = {
  detected: '#ff2d2d',
  dispatched: '#ff9f1a',
  illegal: '#b517d6',
  rectifying: '#1f6feb',
  rectified: '#12b5a5',
  closed: '#8a9099',
  dismissed: '#c3c9d0',
  legal: '#4caf50',
  false_change: '#c3c9d0',
  pre_existing: '#c3c9d0',
  merged: '#c3c9d0',
  split: '#c3c9d0',
};
const CLASS_LABEL: Record<string, string> = {
  ecological: '生态 ecological',
  farmland: '耕地 farmland',
  water: '水域 water',
  general: '一般 general',
};

function statusBadge(p: Row): string {
  let s = `<span class="badge" style="border:1px solid ${STATUS_COLOUR[p.status] ?? '#999'}">${esc(STATUS_LABEL[p.status] ?? p.status)}</span>`;
  if (p.overdue_since) s += ` <span class="badge overdue">逾期 overdue</span>`;
  if (p.escalated) s += ` <span class="badge escalated">督办 escalated</span>`;
  return s;
}

function showError(where: HTMLElement, err: unknown): void {
  where.innerHTML = `<div class="error" role="alert">${esc((err as Error).message)}</div>`;
}

// ---------------------------------------------------------------------------------------------
// Sign-in and frame

function signOut(): void {
  token = null;
  me = null;
  localStorage.removeItem(TOKEN_KEY);
  renderFrame();
  renderLogin();
}

function renderLogin(): void {
  main().innerHTML = `
    <form class="login" id="login">
      <h2>登录 Sign in</h2>
      <label>用户名 Username <input name="username" autocomplete="username"></label>
      <label>密码 Password <input name="password" type="password" autocomplete="current-password"></label>
      <p style="margin:10px 0 4px;color:#4b5a69">或 or an API token</p>
      <input name="token" placeholder="token" aria-label="API token">
      <div id="login-msg"></div>
      <p><button class="primary" type="submit">登录 Sign in</button></p>
    </form>`;
  on($('#login'), 'submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    try {
      if (field(f, 'token').trim()) {
        token = field(f, 'token').trim();
      } else {
        const r = await api<{ token: string }>('/api/login', {
          method: 'POST',
          body: JSON.stringify({ username: field(f, 'username'), password: field(f, 'password') }),
        });
        token = r.token;
      }
      me = await api<User>('/api/me');
      localStorage.setItem(TOKEN_KEY, token!);
      if (location.hash.startsWith('#/') && location.hash !== '#/') await route();
      else location.hash = '#/map'; // the hashchange routes
    } catch (err) {
      token = null;
      showError(
        $('#login-msg'),
        err instanceof ApiError && err.status === 401
          ? new Error('用户名、密码或令牌无效 unknown user, wrong password or invalid token')
          : err,
      );
    }
  });
}

function renderFrame(): void {
  const nav = $('#nav');
  const who = $('#who');
  if (!me) {
    nav.innerHTML = '';
    who.innerHTML = '';
    return;
  }
  const links: [string, string][] = [
    ['#/map', '地图 Map'],
    ['#/board', '督办 Board'],
  ];
  if (me.role !== 'town') links.push(['#/batches', '批次 Batches']);
  const here = location.hash.split('/')[1] ?? 'map';
  nav.innerHTML = links
    .map(([href, label]) => `<a href="${href}" class="${href.split('/')[1] === here ? 'active' : ''}">${label}</a>`)
    .join('');
  who.innerHTML = `${esc(me.displayName || me.username)} · ${esc(me.role)}${me.townCode ? ` · ${esc(me.townCode)}` : ''} <button id="signout">退出 Sign out</button>`;
  $('#signout').addEventListener('click', () => {
    // the server revokes the token, so a copy left behind (a shared computer) stops working too
    api('/api/logout', { method: 'POST' })
      .catch(() => undefined)
      .finally(signOut);
  });
}

let cleanup: (() => void) | null = null;
/** Each navigation gets a number; a render that awaited while the user moved on stops there. */
let routeSeq = 0;
const stale = (seq: number) => seq !== routeSeq;

async function route(): Promise<void> {
  const seq = ++routeSeq;
  cleanup?.();
  cleanup = null;
  if (!token) return renderLogin();
  try {
    me ??= await api<User>('/api/me');
    config ??= await api<MapConfig>('/api/map/config');
    meta ??= await api('/api/meta');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    return showError(main(), err);
  }
  if (stale(seq)) return;
  renderFrame();
  const [, page, arg] = location.hash.split('/');
  try {
    if (page === 'patch' && arg) await renderPatch(decodeURIComponent(arg), seq);
    else if (page === 'board') await renderBoard(seq);
    else if (page === 'batches') await renderBatches(arg ? Number(arg) : null, seq);
    else await renderMap(seq);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showError(main(), err);
  }
}

// ---------------------------------------------------------------------------------------------
// Map and list

const state = {
  month: '' as string,
  filters: { town: '', status: '', class: '', overdue: '', min_area: '' } as Record<string, string>,
  sort: 'code',
  dir: 'asc' as 'asc' | 'desc',
  swipe: 50,
  selected: null as string | null,
};

function patchQuery(extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({ month: state.month, sort: state.sort, dir: state.dir, limit: '1000', ...extra });
  for (const [k, v] of Object.entries(state.filters)) if (v) q.set(k, v);
  return q.toString();
}

function patchStyle(selected: boolean) {
  const cache = new Map<string, Style>();
  const labelFill = new Fill({ color: '#fff' });
  const labelStroke = new Stroke({ color: '#000', width: 3 });
  return (f: Feature<Geometry>, resolution: number) => {
    const p = f.getProperties();
    const key = `${p.status}|${!!p.overdue_since}|${selected}`;
    let s = cache.get(key);
    if (!s) {
      const colour = STATUS_COLOUR[p.status] ?? '#ff2d2d';
      s = new Style({
        stroke: new Stroke({
          color: selected ? '#ffd400' : p.overdue_since ? '#7a0000' : colour,
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

async function renderMap(seq: number): Promise<void> {
  const cfg = config!;
  if (!cfg.months.length) {
    main().innerHTML =
      '<div class="card">No imagery registered yet: run <code>tuban imagery register</code> and a batch first.</div>';
    return;
  }
  const months = cfg.months.map((m) => m.month).reverse();
  if (!state.month || !months.includes(state.month)) state.month = months[0];
  const towns = (await api<{ towns: Row[] }>(`/api/reports/monthly?month=${state.month}`)).towns;
  if (stale(seq)) return;
  main().innerHTML = `
    <div class="mapview">
      <div class="side">
        <form class="filters" id="filters">
          <label>月份 Month <select name="month">${months.map((m) => `<option ${m === state.month ? 'selected' : ''}>${m}</option>`).join('')}</select></label>
          <label>镇街 Town <select name="town" ${me!.role === 'town' ? 'disabled' : ''}><option value="">全部 all</option>${towns.map((t) => `<option value="${esc(t.town_code)}" ${t.town_code === state.filters.town ? 'selected' : ''}>${esc(t.town_name)} ${esc(t.town_code)}</option>`).join('')}</select></label>
          <label>状态 Status <select name="status"><option value="">全部 all</option>${Object.entries(STATUS_LABEL)
            .map(([k, v]) => `<option value="${k}" ${k === state.filters.status ? 'selected' : ''}>${v}</option>`)
            .join('')}</select></label>
          <label>类别 Class <select name="class"><option value="">全部 all</option>${Object.entries(CLASS_LABEL)
            .map(([k, v]) => `<option value="${k}" ${k === state.filters.class ? 'selected' : ''}>${v}</option>`)
            .join('')}</select></label>
          <label>逾期 Overdue <select name="overdue"><option value="">全部 all</option><option value="true" ${state.filters.overdue === 'true' ? 'selected' : ''}>逾期 overdue</option><option value="false" ${state.filters.overdue === 'false' ? 'selected' : ''}>未逾期 not overdue</option></select></label>
          <label>最小面积 Min area m² <input name="min_area" type="number" min="0" step="10" value="${esc(state.filters.min_area)}"></label>
        </form>
        <div id="list-msg"></div>
        <div id="list"></div>
      </div>
      <div class="mapwrap">
        <div id="map"></div>
        <div class="legend">${['detected', 'dispatched', 'illegal', 'rectifying', 'rectified', 'closed'].map((s) => `<div><span style="border-color:${STATUS_COLOUR[s]}"></span>${STATUS_LABEL[s]}</div>`).join('')}<div><span style="border-color:#7a0000;border-style:dashed"></span>逾期 overdue</div></div>
        <div class="swipe"><span id="swipe-before"></span><input id="swipe" type="range" min="0" max="100" value="${state.swipe}" aria-label="before/after swipe"><span id="swipe-after"></span></div>
        <div id="popup" class="popup" hidden></div>
      </div>
    </div>`;

  const monthCfg = cfg.months.find((m) => m.month === state.month)!;
  const code = `EPSG:${cfg.srid}`;
  if (!getProjection(code)) {
    proj4.defs(code, cfg.proj4);
    register(proj4);
  }
  const projection = getProjection(code)!;
  const tileGrid = new TileGrid({
    origin: cfg.tileGrid.origin,
    resolutions: cfg.tileGrid.resolutions,
    tileSize: cfg.tileGrid.tileSizePx,
  });
  const imagery = (month: string) =>
    new TileLayer({
      source: new XYZ({
        projection,
        tileGrid,
        url: `/api/map/tiles/${month}/{z}/{x}/{y}.png`,
        transition: 0,
        tileLoadFunction: (tile, src) => {
          const img = (tile as ImageTile).getImage() as HTMLImageElement;
          showImage(img, src, 'data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==').catch(
            () => {
              img.src = 'data:,';
            },
          );
        },
      }),
      maxResolution: cfg.maxImageryResolution * 1.01,
    });
  const after = imagery(state.month);
  const before = monthCfg.baselineMonth ? imagery(monthCfg.baselineMonth) : null;
  $('#swipe-before').textContent = monthCfg.baselineMonth
    ? `前时相 before ${monthCfg.baselineMonth}`
    : 'no before month';
  $('#swipe-after').textContent = `后时相 after ${state.month}`;
  const source = new VectorSource();
  const vector = new VectorLayer({ source, style: patchStyle(false) as any });
  const selectedLayer = new VectorLayer({ source: new VectorSource(), style: patchStyle(true) as any });
  const map = new OlMap({
    target: 'map',
    layers: [after, ...(before ? [before] : []), vector, selectedLayer],
    view: new View({
      projection,
      center: getCenter(monthCfg.extent),
      resolution: 1,
      resolutions: cfg.tileGrid.resolutions,
      constrainResolution: true,
    }),
  });
  (window as any).__tubanMap = map;
  map.getView().fit(monthCfg.extent, { padding: [20, 20, 20, 20] });
  if (before) {
    before.on('prerender', (event: RenderEvent) => {
      const ctx = event.context as CanvasRenderingContext2D;
      const width = ctx.canvas.width * (state.swipe / 100);
      const tl = getRenderPixel(event, [0, 0]);
      const tr = getRenderPixel(event, [width / (event.frameState?.pixelRatio ?? 1), 0]);
      const bl = getRenderPixel(event, [0, ctx.canvas.height]);
      const br = getRenderPixel(event, [width / (event.frameState?.pixelRatio ?? 1), ctx.canvas.height]);
      ctx.save();
      ctx.beginPath();
      ctx.moveTo(tl[0], tl[1]);
      ctx.lineTo(bl[0], bl[1]);
      ctx.lineTo(br[0], br[1]);
      ctx.lineTo(tr[0], tr[1]);
      ctx.closePath();
      ctx.clip();
    });
    before.on('postrender', (event: RenderEvent) => (event.context as CanvasRenderingContext2D).restore());
  }
  $<HTMLInputElement>('#swipe').addEventListener('input', (e) => {
    state.swipe = Number((e.target as HTMLInputElement).value);
    map.render();
  });
  cleanup = () => map.setTarget(undefined);

  const format = new GeoJSON({ dataProjection: projection, featureProjection: projection });
  let rows: Row[] = [];
  const select = (codeSel: string | null, zoom: boolean) => {
    state.selected = codeSel;
    const sel = selectedLayer.getSource()!;
    sel.clear();
    for (const tr of document.querySelectorAll<HTMLTableRowElement>('#list tr[data-code]'))
      tr.classList.toggle('selected', tr.dataset.code === codeSel);
    const f = codeSel ? source.getFeatureById(codeSel) : null;
    if (f) {
      sel.addFeature(f.clone());
      if (zoom)
        map.getView().fit(f.getGeometry()!.getExtent(), {
          padding: [80, 80, 80, 80],
          maxZoom: cfg.tileGrid.resolutions.length - 2,
          duration: 250,
        });
    }
  };
  const load = async () => {
    try {
      const fc = await api(`/api/map/patches?${patchQuery()}`);
      source.clear();
      source.addFeatures(format.readFeatures(fc) as Feature<Geometry>[]);
      rows = fc.features.map((f: Row) => f.properties);
      renderList();
      $('#list-msg').innerHTML = `<div>${fc.total} 个图斑 patch(es) in ${esc(state.month)}</div>`;
      if (state.selected) select(state.selected, false);
    } catch (err) {
      showError($('#list-msg'), err);
    }
  };
  const cols: [string, string, (p: Row) => string][] = [
    ['code', '图斑编号 Code', (p) => esc(p.code)],
    ['town', '镇街 Town', (p) => esc(p.town_name)],
    ['status', '状态 Status', (p) => statusBadge(p)],
    ['area_m2', '面积 m²', (p) => fmt(p.area_m2)],
    ['due', '期限 Due', (p) => esc((p.status === 'dispatched' ? p.verify_due : p.rectify_due) ?? '–')],
  ];
  const renderList = () => {
    $('#list').innerHTML =
      `<table id="patch-table"><thead><tr>${cols.map(([k, label]) => `<th class="sortable ${state.sort === k ? `sorted-${state.dir}` : ''}" data-sort="${k}">${label}</th>`).join('')}</tr></thead>
      <tbody>${rows.map((p) => `<tr class="clickable" data-code="${esc(p.code)}">${cols.map(([, , f]) => `<td>${f(p)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
    for (const th of document.querySelectorAll<HTMLElement>('#list th[data-sort]')) {
      th.addEventListener('click', () => {
        const k = th.dataset.sort!;
        state.dir = state.sort === k && state.dir === 'asc' ? 'desc' : 'asc';
        state.sort = k;
        void load();
      });
    }
    for (const tr of document.querySelectorAll<HTMLTableRowElement>('#list tr[data-code]')) {
      tr.addEventListener('click', () => select(tr.dataset.code!, true));
      tr.addEventListener('dblclick', () => {
        location.hash = `#/patch/${encodeURIComponent(tr.dataset.code!)}`;
      });
    }
  };
  on($('#filters'), 'change', async (e) => {
    const el = e.target as HTMLInputElement;
    if (el.name === 'month') {
      state.month = el.value;
      state.selected = null;
      return route();
    }
    state.filters[el.name] = el.value;
    await load();
  });
  const popup = $('#popup');
  map.on('singleclick', (e) => {
    const f = map.forEachFeatureAtPixel(e.pixel, (x) => x, { layerFilter: (l) => l === vector }) as
      | Feature<Geometry>
      | undefined;
    if (!f) {
      popup.hidden = true;
      return select(null, false);
    }
    const p = f.getProperties();
    select(p.code, false);
    popup.innerHTML = `<strong>${esc(p.code)}</strong> ${esc(p.town_name)} · ${fmt(p.area_m2)} m²<br>${statusBadge(p)} <a href="#/patch/${encodeURIComponent(p.code)}">详情 open</a>`;
    popup.style.left = `${e.pixel[0]}px`;
    popup.style.top = `${e.pixel[1]}px`;
    popup.hidden = false;
  });
  await load();
}

// ---------------------------------------------------------------------------------------------
// Patch page

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: string[];
  const?: string;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  description?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  items?: unknown;
}

/**
 * One form for a body with variants (verify: one per result): the fields of every variant, the
 * discriminator's values as one choice, required only what every variant requires. The server checks
 * which fields the chosen variant needs.
 */
function flatSchema(schema: JsonSchema): JsonSchema {
  const variants = schema.oneOf ?? schema.anyOf;
  if (!variants) return schema;
  const properties: Record<string, JsonSchema> = {};
  for (const v of variants) {
    for (const [name, p] of Object.entries(v.properties ?? {})) {
      const values = [...(properties[name]?.enum ?? []), ...(p.enum ?? (p.const !== undefined ? [p.const] : []))];
      properties[name] = { ...properties[name], ...p, ...(values.length ? { enum: values } : {}) };
    }
  }
  const required = Object.keys(properties).filter((n) => variants.every((v) => v.required?.includes(n)));
  return { type: 'object', properties, required };
}

function actionForm(action: string, full: JsonSchema): string {
  const schema = flatSchema(full);
  const props = Object.entries(schema.properties ?? {});
  const fields = props.map(([name, s]) => {
    // made once per form: sending the same form twice (a double click, a retry) is one request
    if (name === 'request_key') return `<input type="hidden" name="request_key" value="${requestKey()}">`;
    const req = schema.required?.includes(name) ? ' *' : '';
    const hint = s.description ? ` <small>${esc(s.description)}</small>` : '';
    let input: string;
    if (s.enum)
      input = `<select name="${name}">${req ? '' : '<option value=""></option>'}${s.enum.map((v) => `<option>${esc(v)}</option>`).join('')}</select>`;
    else if (s.type === 'integer' || s.type === 'number')
      input = `<input name="${name}" type="number" ${s.minimum !== undefined ? `min="${s.minimum}"` : ''} ${s.maximum !== undefined ? `max="${s.maximum}"` : ''}>`;
    else if (s.type === 'array')
      return `<p><small>${esc(name)}: drawn polygons — use the API (POST /api/patches/{code}/actions/${action}).</small></p>`;
    else if (s.pattern?.includes('\\d{4}-\\d{2}-\\d{2}')) input = `<input name="${name}" type="date">`;
    else input = `<input name="${name}">`;
    return `<label>${esc(name)}${req}${hint}${input}</label>`;
  });
  return `<form class="actionform" data-action="${action}">${fields.join('')}<div><button class="primary" type="submit">${esc(action)}</button> <button type="button" data-cancel>取消 cancel</button></div></form>`;
}

/** A random request key; crypto.getRandomValues works where randomUUID does not (plain http on an intranet). */
function requestKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function formBody(form: HTMLFormElement, full: JsonSchema): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(flatSchema(full).properties ?? {})) {
    const el = form.elements.namedItem(name) as HTMLInputElement | null;
    if (!el || el.value === '') continue;
    body[name] = s.type === 'integer' || s.type === 'number' ? Number(el.value) : el.value;
  }
  return body;
}

async function renderPatch(code: string, seq: number): Promise<void> {
  const p = await api<Row>(`/api/patches/${encodeURIComponent(code)}`);
  if (stale(seq)) return;
  const mu = (m2: number) => (m2 / 666.6667).toFixed(2);
  const attrs: [string, string][] = [
    ['月份 Month', esc(p.month)],
    ['镇街 Town', `${esc(p.town_name)} ${esc(p.town_code)}`],
    ['网格 Grid', esc(p.grid_code)],
    ['类别 Class', esc(CLASS_LABEL[p.class] ?? p.class)],
    ['面积 Area', `${fmt(p.area_m2)} m² (${mu(p.area_m2)} 亩)`],
    ['耕地 Farmland', `${fmt(p.farmland_m2)} m²`],
    ['生态 Ecological', `${fmt(p.ecological_m2)} m²`],
    ['水域 Water', `${fmt(p.water_m2)} m²`],
    ['模型 Model', `${esc(p.model)} · p=${fmt(p.mean_prob, 2)}`],
    ['核查结果 Verification', esc(p.verification_result ?? '–')],
    ['违法类型 Violation', esc(p.violation ?? '–')],
    ['许可 Permit', esc(p.permit_ref ?? '–')],
    ['整改措施 Measure', esc(p.measure ?? '–')],
    ['核查期限 Verify by', esc(p.verify_due ?? '–')],
    ['整改期限 Rectify by', esc(p.rectify_due ?? '–')],
    ['逾期 Overdue since', esc(p.overdue_since ?? '–')],
  ];
  if (p.regularised) attrs.push(['规则化 Outline', `${esc(p.regularised)} (${fmt(p.raw_area_m2)} m² before)`]);
  if (p.rebuilt_of)
    attrs.push(['复建 Rebuilt of', `<a href="#/patch/${encodeURIComponent(p.rebuilt_of)}">${esc(p.rebuilt_of)}</a>`]);
  if (p.split_from)
    attrs.push(['拆分自 Split from', `<a href="#/patch/${encodeURIComponent(p.split_from)}">${esc(p.split_from)}</a>`]);
  const actions: string[] = p.allowed_actions ?? [];
  main().innerHTML = `
    <p><a href="#/map">← 地图 map</a></p>
    <h2 id="patch-code">${esc(p.code)} ${statusBadge(p)}</h2>
    <div class="patch">
      <div>
        <div class="chips">
          <figure><img id="chip-before" alt="before"><figcaption>前时相 before ${esc(p.baseline_month ?? '')}</figcaption></figure>
          <figure><img id="chip-after" alt="after"><figcaption>后时相 after ${esc(p.month)}</figcaption></figure>
        </div>
        <div class="card"><h3>属性 Attributes</h3><table>${attrs.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table></div>
        <div class="card"><h3>历次监测 Observations</h3><table><tr><th>Month</th><th>Kind</th><th>Area m²</th><th>p</th></tr>${(p.observations as Row[]).map((o) => `<tr><td>${esc(o.month)}</td><td>${esc(o.kind)}</td><td>${fmt(o.area_m2)}</td><td>${fmt(o.mean_prob, 2)}</td></tr>`).join('')}</table></div>
      </div>
      <div>
        <div class="card actions"><h3>操作 Actions</h3>
          ${actions.length ? actions.map((a) => `<button data-open="${a}" title="${esc(meta!.actions[a]?.label ?? '')}">${esc(a)}</button>`).join('') : '<p>无可用操作 No action open to your role in this state.</p>'}
          <div id="action-area"></div><div id="action-msg"></div>
        </div>
        <div class="card"><h3>历史 History</h3><table id="history"><tr><th>时间 At</th><th>人 Actor</th><th>事件 Event</th><th>状态 State</th><th>说明 Detail</th></tr>
          ${(p.history as Row[]).map((h) => `<tr><td>${esc(String(h.at).replace('T', ' ').slice(0, 19))}</td><td>${esc(h.actor)}</td><td>${esc(h.type)}</td><td>${esc(h.from_status ?? '')} → ${esc(h.to_status ?? '')}</td><td><small>${esc(summarise(h.detail))}</small></td></tr>`).join('')}</table>
          <form id="note" style="margin-top:8px;display:flex;gap:6px"><input name="text" placeholder="备注 note" style="flex:1"><button>添加 add note</button></form>
        </div>
        <div class="card"><h3>证据 Evidence</h3>
          <ul id="evidence">${(p.evidence as Row[]).map((e) => `<li><a href="#" data-evidence="${e.id}" data-name="${esc(e.filename)}">${esc(e.filename)}</a> (${e.bytes < 1024 ? `${e.bytes} B` : `${Math.round(e.bytes / 1024)} kB`}) ${esc(e.note ?? '')}</li>`).join('') || '<li>–</li>'}</ul>
          <form id="upload" style="display:flex;gap:6px"><input type="file" name="file" accept="image/jpeg,image/png,application/pdf"><button>上传 upload</button></form>
        </div>
      </div>
    </div>`;
  for (const which of ['before', 'after'] as const) {
    const img = $<HTMLImageElement>(`#chip-${which}`);
    showImage(img, `/api/patches/${encodeURIComponent(code)}/chips/${which}.png`, '')
      .then((shown) => {
        if (!shown) img.alt = 'no imagery';
      })
      .catch(() => {});
  }
  const area = $('#action-area');
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-open]')) {
    b.addEventListener('click', () => {
      const action = b.dataset.open!;
      const schema = meta!.actions[action].schema;
      area.innerHTML = `<p><small>${esc(meta!.actions[action].label)}</small></p>${actionForm(action, schema)}`;
      const form = $<HTMLFormElement>('form.actionform', area);
      $('[data-cancel]', form).addEventListener('click', () => {
        area.innerHTML = '';
      });
      on(form, 'submit', async (e) => {
        e.preventDefault();
        try {
          await api(`/api/patches/${encodeURIComponent(code)}/actions/${action}`, {
            method: 'POST',
            body: JSON.stringify(formBody(form, schema)),
          });
          await renderPatch(code, seq);
          $('#action-msg').innerHTML = `<div class="ok">${esc(action)} ✓</div>`;
        } catch (err) {
          showError($('#action-msg'), err);
        }
      });
    });
  }
  on($('#note'), 'submit', async (e) => {
    e.preventDefault();
    const note = field(e.target, 'text');
    try {
      await api(`/api/patches/${encodeURIComponent(code)}/notes`, {
        method: 'POST',
        body: JSON.stringify({ text: note }),
      });
      await renderPatch(code, seq);
    } catch (err) {
      showError($('#action-msg'), err);
    }
  });
  on($('#upload'), 'submit', async (e) => {
    e.preventDefault();
    const file = new FormData(e.target as HTMLFormElement).get('file') as File | null;
    if (!file || !file.size) return showError($('#action-msg'), new Error('choose a JPEG, PNG or PDF file first'));
    try {
      // sent as bytes whatever the browser thinks the type is: the server decides by the content
      await api(`/api/patches/${encodeURIComponent(code)}/evidence?filename=${encodeURIComponent(file.name)}`, {
        method: 'POST',
        body: file,
        headers: { 'content-type': 'application/octet-stream' },
      });
      await renderPatch(code, seq);
    } catch (err) {
      showError($('#action-msg'), err);
    }
  });
  for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-evidence]')) {
    on(a, 'click', async (e) => {
      e.preventDefault();
      const url = await blobUrl(`/api/evidence/${a.dataset.evidence}`);
      if (!url) return;
      const link = document.createElement('a');
      link.href = url;
      link.download = a.dataset.name ?? 'evidence';
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
  }
}

function summarise(detail: unknown): string {
  if (!detail || typeof detail !== 'object') return '';
  return Object.entries(detail as Row)
    .filter(([k]) => k !== 'previous_geom')
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join('; ')
    .slice(0, 200);
}

// ---------------------------------------------------------------------------------------------
// Supervisor board

async function renderBoard(seq: number): Promise<void> {
  const months = config!.months.map((m) => m.month).reverse();
  const month = state.month && months.includes(state.month) ? state.month : months[0];
  if (!month) {
    main().innerHTML = '<div class="card">No months yet.</div>';
    return;
  }
  const [board, report, trend] = await Promise.all([
    api<{ today: string; due_by: string; working_days: number; towns: Row[] }>('/api/reports/board?days=3'),
    api<{ month: string; previous_month: string; city: Row; towns: Row[] }>(`/api/reports/monthly?month=${month}`),
    api<Row[]>(`/api/reports/trend?month=${month}&months=12`),
  ]);
  if (stale(seq)) return;
  const codes = (items: Row[]) =>
    items
      .map(
        (i) =>
          `<a href="#/patch/${encodeURIComponent(i.code)}">${esc(i.code)}</a> <small>${esc(i.deadline === 'verification' ? '核查' : '整改')} ${esc(i.due)}</small>`,
      )
      .join('<br>') || '–';
  main().innerHTML = `
    <div class="card"><label>月份 Month <select id="board-month">${months.map((m) => `<option ${m === month ? 'selected' : ''}>${m}</option>`).join('')}</select></label>
      <span style="margin-left:12px">today ${esc(board.today)}; due within ${board.working_days} working days: by ${esc(board.due_by)}</span></div>
    <div class="grid2">
      <div class="card"><h3>期限 Deadlines by town</h3>
        <table id="board-deadlines"><tr><th>镇街 Town</th><th>即将到期 Due soon</th><th>逾期 Overdue</th><th>督办 Escalated</th></tr>
        ${board.towns.map((t) => `<tr><td>${esc(t.town_name)}<br><small>${esc(t.town_code)}</small></td><td>${codes(t.due_soon)}</td><td>${codes(t.overdue)}</td><td>${codes(t.escalated)}</td></tr>`).join('') || '<tr><td colspan="4">没有到期、逾期或督办的图斑 Nothing due, overdue or escalated.</td></tr>'}</table>
      </div>
      <div class="card"><h3>新增图斑 New patches per month</h3>${trendChart(trend)}</div>
    </div>
    <div class="card"><h3>${esc(report.month)} 镇街排名 Town ranking (新增两违零增长 zero growth marked)</h3>
      <table id="ranking"><tr><th>#</th><th>镇街 Town</th><th>新增 New</th><th>面积 m²</th><th>较上月 vs ${esc(report.previous_month)}</th><th>已核查 Verified</th><th>违法 Illegal</th><th>已整改 Rectified</th><th>逾期 Overdue</th><th>督办 Escalated</th></tr>
      ${report.towns.map((t) => `<tr><td>${t.rank}</td><td>${esc(t.town_name)} ${t.zero_growth ? '<span class="badge zero" title="no new illegal construction verified this month">零增长 zero growth</span>' : ''}</td><td>${t.new_patches}</td><td>${fmt(t.new_area_m2)}</td><td>${t.change_from_previous > 0 ? '+' : ''}${t.change_from_previous}</td><td>${t.verified}</td><td>${t.illegal}</td><td>${t.rectified}</td><td>${t.overdue}</td><td>${t.escalated}</td></tr>`).join('')}
      <tr><th></th><th>全市 City</th><th>${report.city.new_patches}</th><th>${fmt(report.city.new_area_m2)}</th><th>${report.city.change_from_previous}</th><th>${report.city.verified}</th><th>${report.city.illegal}</th><th>${report.city.rectified}</th><th>${report.city.overdue}</th><th>${report.city.escalated}</th></tr></table>
    </div>`;
  $('#board-month').addEventListener('change', (e) => {
    state.month = (e.target as HTMLSelectElement).value;
    void route();
  });
}

function trendChart(rows: Row[]): string {
  const w = 520,
    h = 180,
    pad = 28;
  const max = Math.max(1, ...rows.map((r) => r.new_patches));
  const bw = (w - pad * 2) / Math.max(1, rows.length);
  const bars = rows
    .map((r, i) => {
      const bh = ((h - pad * 2) * r.new_patches) / max;
      const x = pad + i * bw + 3,
        y = h - pad - bh;
      return `<rect x="${x}" y="${y}" width="${bw - 6}" height="${bh}" fill="#1f6feb"><title>${esc(r.month)}: ${r.new_patches}</title></rect>
      <text x="${x + (bw - 6) / 2}" y="${y - 3}" text-anchor="middle">${r.new_patches}</text>
      <text x="${x + (bw - 6) / 2}" y="${h - pad + 14}" text-anchor="middle">${esc(String(r.month).slice(2))}</text>`;
    })
    .join('');
  return `<svg class="chart" id="trend" viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="new patches per month"><line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#8aa0b6"/>${bars}</svg>`;
}

// ---------------------------------------------------------------------------------------------
// Batches

async function renderBatches(id: number | null, seq: number): Promise<void> {
  const list = await api<Row[]>('/api/batches');
  if (stale(seq)) return;
  main().innerHTML = `
    <div class="grid2">
      <div class="card"><h3>批次 Batches</h3><div id="batches"></div></div>
      <div class="card" id="batch-detail"><h3>进度 Progress</h3><p>选择批次 Pick a batch.</p></div>
    </div>`;
  const chosen = id ?? (list[0] ? Number(list[0].id) : null);
  const drawList = (rows: Row[]) => {
    $('#batches').innerHTML =
      `<table><tr><th>#</th><th>Month</th><th>Baseline</th><th>Status</th><th>Tiles</th><th>Failed</th><th>New patches</th><th>Started</th></tr>
      ${rows.map((b) => `<tr class="clickable ${Number(b.id) === chosen ? 'selected' : ''}" data-batch="${b.id}"><td>${b.id}</td><td>${esc(b.month)}</td><td>${esc(b.baseline_month)}</td><td>${esc(b.status)}</td><td>${b.vectorized + b.failed}/${b.tiles}</td><td>${b.failed}</td><td>${b.patches?.new ?? '–'}</td><td>${esc(b.created_at)}</td></tr>`).join('') || '<tr><td colspan="8">No batch yet.</td></tr>'}</table>`;
    for (const tr of document.querySelectorAll<HTMLElement>('[data-batch]'))
      tr.addEventListener('click', () => {
        location.hash = `#/batches/${tr.dataset.batch}`;
      });
  };
  drawList(list);
  if (chosen === null) return;
  let timer = 0;
  const draw = async () => {
    const el = $('#batch-detail');
    if (!el || stale(seq)) return;
    try {
      const [p, rows] = await Promise.all([api<Row>(`/api/batches/${chosen}`), api<Row[]>('/api/batches')]);
      if (stale(seq)) return;
      drawList(rows);
      const b = p.batch;
      const done = b.vectorized + b.failed;
      const running = ['queued', 'running'].includes(b.status);
      el.innerHTML = `<h3>批次 Batch ${b.id} · ${esc(b.month)} vs ${esc(b.baseline_month)} · <span id="batch-status">${esc(b.status)}</span></h3>
        <div class="progress" title="${done}/${b.tiles}"><div style="width:${b.tiles ? (100 * done) / b.tiles : 0}%"></div></div>
        <p>${done}/${b.tiles} tiles done (${b.vectorized} ok, ${b.failed} failed, ${b.queued} queued); diff job: ${esc(p.diff ?? '–')};
          BullMQ: ${
            p.queueAvailable
              ? Object.entries(p.jobs)
                  .map(([k, v]) => `${esc(k)} ${esc(v)}`)
                  .join(', ') || 'no jobs held'
              : 'not reachable (database state only)'
          }; model ${esc(b.model_name)} ${esc(b.model_version)}</p>
        <table id="batch-tiles"><tr><th>Tile</th><th>Status</th><th>Part jobs</th><th>Parts</th><th>Reason</th></tr>
        ${(p.tiles as Row[]).map((t) => `<tr><td><small>${esc(String(t.path).split('/').slice(-2).join('/'))}</small></td><td>${esc(t.status)}</td><td>${esc(t.part_jobs ?? '–')}</td><td>${t.parts_done}/${t.parts}</td><td>${t.error_code ? `<strong>${esc(t.error_code)}</strong> ${esc(t.error_message)}` : ''}</td></tr>`).join('')}</table>`;
      if (running) timer = window.setTimeout(draw, 2000);
    } catch (err) {
      showError(el, err);
    }
  };
  cleanup = () => window.clearTimeout(timer);
  await draw();
}

window.addEventListener('hashchange', () => void route());
void route();
