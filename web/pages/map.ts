/**
 * The map page: the month's patches as a sortable list beside a map over the month's imagery. The
 * month, the filters and the sort are in the URL (`#/map?month=2024-03&status=dispatched&sort=area_m2`),
 * so a link shows the same view; changing a filter rewrites the URL without a new history entry.
 */
import { html, nothing, render, type TemplateResult } from 'lit-html';
import type { PatchFeatureCollection, PatchListItem, TownsBody } from '../../api/responses.ts';
import type { MonthlyReportBody } from '../../api/reports.ts';
import { api } from '../api.ts';
import { statusBadge } from '../components/badges.ts';
import { downloadsCard, type DownloadsState } from '../components/downloads.ts';
import { errorMessage } from '../components/message.ts';
import { monthsOf, pickMonth, type AppContext } from '../context.ts';
import { fmt, LEGEND_STATES, OVERDUE_COLOUR, STATUS_COLOUR } from '../labels.ts';
import { choices, t } from '../locale.ts';
import { href, navigate, replaceQuery, type Navigation } from '../router.ts';
import { patchMap, type PatchMap } from './map.layers.ts';

const FILTERS = ['town', 'status', 'class', 'overdue', 'min_area_m2'] as const;
type Filter = (typeof FILTERS)[number];
const SORTS = ['code', 'town', 'status', 'area_m2', 'due'] as const;

interface MapView {
  month: string;
  filters: Record<Filter, string>;
  sort: string;
  dir: 'asc' | 'desc';
}

/** The view the URL asks for, with defaults. */
export function mapViewFrom(query: URLSearchParams, month: string): MapView {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) ?? ''])) as Record<Filter, string>;
  const sort = query.get('sort') ?? 'code';
  return {
    month,
    filters,
    sort: (SORTS as readonly string[]).includes(sort) ? sort : 'code',
    dir: query.get('dir') === 'desc' ? 'desc' : 'asc',
  };
}

const viewQuery = (v: MapView) => ({
  month: v.month,
  ...v.filters,
  sort: v.sort === 'code' ? '' : v.sort,
  dir: v.dir === 'asc' ? '' : v.dir,
});

const COLUMNS: [string, string, (p: PatchListItem) => TemplateResult | string][] = [
  ['code', '图斑编号 Code', (p) => p.code],
  ['town', '镇街 Town', (p) => p.town_name ?? ''],
  ['status', '状态 Status', (p) => statusBadge(p)],
  ['area_m2', '面积 m²', (p) => fmt(p.area_m2)],
  ['due', '期限 Due', (p) => (p.status === 'dispatched' ? p.verify_due : p.rectify_due) ?? '–'],
];

const options = (entries: [string, string][], chosen: string) =>
  entries.map(([value, label]) => html`<option value=${value} ?selected=${value === chosen}>${label}</option>`);

export async function renderMapPage(ctx: AppContext, nav: Navigation): Promise<void> {
  const month = pickMonth(ctx, nav.route.query.get('month'));
  if (!month) {
    render(
      html`<div class="card">
        No imagery registered yet: run <code>tuban imagery register</code> and a batch first.
      </div>`,
      ctx.main,
    );
    return;
  }
  const view = mapViewFrom(nav.route.query, month);
  const report = await api<MonthlyReportBody>(`/api/reports/monthly?month=${month}`);
  if (nav.stale()) return;
  const baseline = ctx.config.months.find((m) => m.month === month)?.baselineMonth ?? null;
  const state = {
    rows: [] as PatchListItem[],
    total: null as number | null,
    failure: null as unknown,
    selected: null as string | null,
    popup: null as { patch: PatchListItem; pixel: number[] } | null,
    swipe: 50,
    downloads: { status: '', busy: null, failure: null } as DownloadsState,
  };
  let map: PatchMap | null = null;

  const onFilter = (e: Event) => {
    const el = e.target as HTMLInputElement | HTMLSelectElement;
    if (el.name === 'month') return navigate(href('/map', viewQuery({ ...view, month: el.value })));
    view.filters[el.name as Filter] = el.value;
    replaceQuery(viewQuery(view));
    void load();
  };
  const sortBy = (key: string) => {
    view.dir = view.sort === key && view.dir === 'asc' ? 'desc' : 'asc';
    view.sort = key;
    replaceQuery(viewQuery(view));
    void load();
  };
  const setSwipe = (percent: number) => {
    state.swipe = Math.max(0, Math.min(100, percent));
    map?.setSwipe(state.swipe);
    draw();
  };
  /** Dragging the divider's handle moves the boundary between the two months. */
  const dragSwipe = (down: PointerEvent) => {
    const wrap = (down.currentTarget as HTMLElement).closest<HTMLElement>('.mapwrap')!;
    const box = wrap.getBoundingClientRect();
    const move = (e: PointerEvent) => setSwipe(((e.clientX - box.left) / box.width) * 100);
    const up = () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    down.preventDefault();
  };
  /** The town the downloads are for: the user's own, or the one chosen in the filter. */
  const exportTown = () => {
    const code = ownTown ?? (view.filters.town || null);
    const t = report.towns.find((x) => x.town_code === code);
    return t ? { code: t.town_code, name: t.town_name } : null;
  };
  const openPatch = (code: string) => navigate(href(`/patch/${encodeURIComponent(code)}`));
  const select = (code: string | null, zoom: boolean) => {
    state.selected = code;
    map?.select(code, zoom);
    draw();
  };

  /** A filter's choice: "all" first, then the values. */
  const filter = (label: string, name: Filter, entries: [string, string][], fixed: string | null = null) =>
    html`<label
      >${label}
      <select name=${name} ?disabled=${fixed !== null}>
        ${fixed === null ? html`<option value="">全部 all</option>` : nothing}
        ${options(entries, fixed ?? view.filters[name])}
      </select></label
    >`;
  // a town user's list is their town's (the API scopes it): the choice shows it, fixed
  const ownTown = ctx.me.role === 'town' ? ctx.me.townCode : null;
  const filters = html`<form class="filters" id="filters" @change=${onFilter}>
    <label
      >月份 Month
      <select name="month">
        ${options(
          monthsOf(ctx).map((m) => [m, m]),
          month,
        )}
      </select></label
    >
    ${filter(
      '镇街 Town',
      'town',
      report.towns
        .filter((t) => ownTown === null || t.town_code === ownTown)
        .map((t) => [t.town_code, `${t.town_name} ${t.town_code}`]),
      ownTown,
    )}
    ${filter('状态 Status', 'status', choices('status'))} ${filter('类别 Class', 'class', choices('class'))}
    ${filter('逾期 Overdue', 'overdue', [
      ['true', '逾期 overdue'],
      ['false', '未逾期 not overdue'],
    ])}
    <label
      >最小面积 Min area m²
      <input name="min_area_m2" type="number" min="0" step="10" .value=${view.filters.min_area_m2}
    /></label>
  </form>`;

  const table = () =>
    html`<table id="patch-table">
      <thead>
        <tr>
          ${COLUMNS.map(
            ([key, label]) =>
              html`<th
                class="sortable ${view.sort === key ? `sorted-${view.dir}` : ''}"
                data-sort=${key}
                tabindex="0"
                aria-sort=${view.sort === key ? (view.dir === 'asc' ? 'ascending' : 'descending') : 'none'}
                @click=${() => sortBy(key)}
                @keydown=${(e: KeyboardEvent) => {
                  if (e.key === 'Enter') sortBy(key);
                }}
              >
                ${label}
              </th>`,
          )}
        </tr>
      </thead>
      <tbody>
        ${state.rows.map(
          (p) =>
            html`<tr
              class="clickable ${p.code === state.selected ? 'selected' : ''}"
              data-code=${p.code}
              tabindex="0"
              @click=${() => select(p.code, true)}
              @dblclick=${() => openPatch(p.code)}
              @keydown=${(e: KeyboardEvent) => {
                if (e.key === 'Enter') openPatch(p.code);
              }}
            >
              ${COLUMNS.map(([, , cell]) => html`<td>${cell(p)}</td>`)}
            </tr>`,
        )}
      </tbody>
    </table>`;

  const popup = () => {
    const p = state.popup?.patch;
    if (!p) return html`<div id="popup" class="popup" hidden></div>`;
    return html`<div id="popup" class="popup" style="left:${state.popup!.pixel[0]}px;top:${state.popup!.pixel[1]}px">
      <strong>${p.code}</strong> ${p.town_name} · ${fmt(p.area_m2)} m²<br />${statusBadge(p)}
      <a href=${href(`/patch/${encodeURIComponent(p.code)}`)}>详情 open</a>
    </div>`;
  };

  const draw = () =>
    render(
      html`<div class="mapview">
        <div class="side">
          ${filters}
          <div id="list-msg">
            ${
              state.failure
                ? errorMessage(state.failure)
                : state.total === null
                  ? nothing
                  : html`<div>${state.total} 个图斑 patch(es) in ${month}</div>`
            }
          </div>
          <div id="list">${table()}</div>
          ${downloadsCard(month, exportTown(), state.downloads, draw)}
        </div>
        <div class="mapwrap">
          <div id="map"></div>
          ${
            baseline
              ? html`<div class="swipe-line" style="left:${state.swipe}%" aria-hidden="true">
                  <span class="swipe-handle" @pointerdown=${dragSwipe}>⟷</span>
                </div>`
              : nothing
          }
          <div class="legend">
            ${LEGEND_STATES.map(
              (s) => html`<div><span style="border-color:${STATUS_COLOUR[s]}"></span>${t('status', s)}</div>`,
            )}
            <div><span style="border-color:${OVERDUE_COLOUR};border-style:dashed"></span>逾期 overdue</div>
          </div>
          <div class="swipe">
            <span id="swipe-before">${baseline ? `前时相 before ${baseline}` : 'no before month'}</span>
            <input
              id="swipe"
              type="range"
              min="0"
              max="100"
              .value=${String(state.swipe)}
              aria-label="before/after swipe"
              @input=${(e: Event) => setSwipe(Number((e.target as HTMLInputElement).value))}
            />
            <span id="swipe-after">后时相 after ${month}</span>
          </div>
          ${popup()}
        </div>
      </div>`,
      ctx.main,
    );

  async function load() {
    const q = new URLSearchParams({ month: view.month, sort: view.sort, dir: view.dir, limit: '1000' });
    for (const [k, v] of Object.entries(view.filters)) if (v) q.set(k, v);
    try {
      const fc = await api<PatchFeatureCollection>(`/api/map/patches?${q}`);
      if (nav.stale()) return;
      map?.setPatches(fc);
      state.rows = fc.features.map((f) => f.properties);
      state.total = fc.total;
      state.failure = null;
      if (state.selected) map?.select(state.selected, false);
    } catch (err) {
      state.failure = err;
    }
    draw();
  }

  draw();
  map = patchMap(ctx.main.querySelector<HTMLElement>('#map')!, ctx.config, month, state.swipe);
  nav.onLeave(() => map?.dispose());
  map.onClick((p, pixel) => {
    state.popup = p ? { patch: p, pixel } : null;
    select(p?.code ?? null, false);
  });
  api<TownsBody>('/api/map/towns')
    .then((fc) => map?.setTowns(fc))
    .catch(() => {}); // the boundaries are context: the map works without them
  await load();
}
