/**
 * The map page: the month's patches as a sortable list beside a map over the month's imagery. The
 * month, the filters and the sort are in the URL (`#/map?month=2024-03&status=dispatched&sort=area_m2`),
 * so a link shows the same view; changing a filter rewrites the URL without a new history entry.
 */
import { html, nothing, render, type TemplateResult } from 'lit-html';
import type { PatchListItem } from '../../api/responses.ts';
import type { UiKey } from '../../i18n/say.ts';
import { api, post, QueuedError } from '../api.ts';
import { requestKey } from '../components/action-form.ts';
import { drafting } from '../offline.ts';
import { statusBadge } from '../components/badges.ts';
import { downloadsCard, type DownloadsState } from '../components/downloads.ts';
import { errorMessage, uiWith } from '../components/message.ts';
import { monthsOf, pickMonth, type AppContext } from '../context.ts';
import { fmt, LEGEND_STATES, OVERDUE_COLOUR, STATUS_COLOUR } from '../labels.ts';
import { choices, t, ui } from '../locale.ts';
import { href, navigate, replaceQuery, type Navigation } from '../router.ts';
import { patchMap, type PatchMap } from './map.layers.ts';
import { bulkActions, bulkBar, bulkState, tick, tickAll } from '../components/bulk-bar.ts';
import { dueText } from '../components/deadline.ts';

const FILTERS = ['town', 'status', 'class', 'relation', 'source', 'check', 'overdue', 'min_area_m2'] as const;
type Filter = (typeof FILTERS)[number];
const SORTS = ['code', 'town', 'status', 'relation', 'area_m2', 'due'] as const;

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

const COLUMNS: [string, UiKey, (p: PatchListItem) => TemplateResult | string][] = [
  ['code', 'col_code', (p) => p.code],
  ['town', 'col_town', (p) => p.town_name ?? ''],
  ['status', 'col_status', (p) => statusBadge(p)],
  ['relation', 'col_relation', (p) => t('relation', p.building_relation)],
  ['area_m2', 'col_area_m2', (p) => fmt(p.area_m2)],
  [
    'due',
    'col_due',
    (p) =>
      p.status === 'dispatched'
        ? dueText(p.verify_due, p.verify_due_provisional)
        : dueText(p.rectify_due, p.rectify_due_provisional),
  ],
];

/** A report being made on the map (POST /api/patches): the outline once drawn, and its form. */
interface ReportDraft {
  outline: { type: 'Polygon'; coordinates: number[][][] } | null;
  source: 'patrol' | 'complaint';
  /** Whether the month's imagery shows it: asked, never assumed (a yes makes it a training label). */
  visible: boolean | null;
  note: string;
  /** Sent with the report: a second tap or a retry makes no second patch. */
  key: string;
  busy: boolean;
  failure: unknown;
}

/** Patches fetched for the list and the map at a time (显示更多 fetches the next as many). */
const PAGE = 1000;

/** What to run when no month has imagery (a command: the same in every language). */
const REGISTER_IMAGERY = 'tuban imagery register';

const options = (entries: [string, string][], chosen: string) =>
  entries.map(([value, label]) => html`<option value=${value} ?selected=${value === chosen}>${label}</option>`);

export async function renderMapPage(ctx: AppContext, nav: Navigation): Promise<void> {
  const month = pickMonth(ctx, nav.route.query.get('month'));
  if (!month) {
    render(
      html`<div class="card">${uiWith('map_no_imagery', { command: html`<code>${REGISTER_IMAGERY}</code>` })}</div>`,
      ctx.main,
    );
    return;
  }
  const view = mapViewFrom(nav.route.query, month);
  const report = await api(`/api/reports/monthly?month=${month}`);
  if (nav.stale()) return;
  const baseline = ctx.config.months.find((m) => m.month === month)?.baselineMonth ?? null;
  const state = {
    rows: [] as PatchListItem[],
    total: null as number | null,
    /** Where the next page starts (code order), and whether it is being fetched. */
    nextAfter: null as string | null,
    more: false,
    failure: null as unknown,
    selected: null as string | null,
    popup: null as { patch: PatchListItem; pixel: number[] } | null,
    swipe: 50,
    /** 你在这里: the phone's position once asked for, or why there is none. */
    here: null as { accuracyM: number } | { error: string } | null,
    downloads: { status: '', busy: null, failure: null } as DownloadsState,
    bulk: bulkState(),
    /** 上报图斑: drawing an outline on the month's imagery, then its form; null when not reporting. */
    report: null as ReportDraft | null,
    /** A report kept in the outbox while there is no signal, said until the next one starts. */
    queued: null as string | null,
  };
  let map: PatchMap | null = null;
  /** Towns report what they found on patrol, analysts what the public reported (POST /api/patches). */
  const canReport = ctx.me.role === 'town' || ctx.me.role === 'analyst';
  let stopDrawing: (() => void) | null = null;
  const startReport = () => {
    stopDrawing?.();
    state.popup = null;
    state.queued = null;
    state.report = {
      outline: null,
      source: ctx.me.role === 'town' ? 'patrol' : 'complaint',
      visible: null,
      note: '',
      key: requestKey(),
      busy: false,
      failure: null,
    };
    drafting.open = true;
    stopDrawing =
      map?.drawOutline((outline) => {
        if (state.report) state.report.outline = outline;
        draw();
        // the form now covers part of the map (on a phone a sheet along its foot): the outline moves clear of it
        requestAnimationFrame(revealOutline);
      }) ?? null;
    draw();
    // on a phone the button sits below the list, the map above it and perhaps off the screen: bring it into view
    ctx.main.querySelector<HTMLElement>('.mapwrap')?.scrollIntoView({ block: 'nearest' });
  };
  /** Pans (or zooms out) the map so the drawn outline is not under the report's form. */
  const revealOutline = () => {
    const form = ctx.main.querySelector<HTMLElement>('#report-form')?.getBoundingClientRect();
    const box = ctx.main.querySelector<HTMLElement>('#map')?.getBoundingClientRect();
    if (!form || !box || !map) return;
    const edge = 24;
    // a sheet across the map's width covers its foot; a card beside it, its right side
    const sheet = form.width > box.width * 0.8;
    map.revealOutline([
      edge,
      sheet ? edge : Math.max(edge, box.right - form.left + edge),
      sheet ? Math.max(edge, box.bottom - form.top + edge) : edge,
      edge,
    ]);
  };
  /** The report is over (sent, queued, cancelled, or the page left): no drawing, no form, nothing held back. */
  const endReport = () => {
    stopDrawing?.();
    stopDrawing = null;
    state.report = null;
    drafting.open = false;
  };
  const cancelReport = () => {
    endReport();
    draw();
  };
  const submitReport = async (e: Event) => {
    e.preventDefault();
    const r = state.report;
    if (!r?.outline || r.busy || r.visible === null) return;
    r.busy = true;
    r.failure = null;
    draw();
    try {
      const made = await post('/api/patches', {
        outline: r.outline,
        month,
        source: r.source,
        visible: r.visible,
        note: r.note.trim() || undefined,
        request_key: r.key,
      });
      endReport();
      openPatch(made.code);
    } catch (err) {
      if (err instanceof QueuedError) {
        // no signal at the site: the outbox sends it when the signal returns (its key makes it one patch)
        endReport();
        state.queued = err.message;
      } else {
        r.failure = err;
        r.busy = false;
      }
      draw();
    }
  };
  nav.onLeave(endReport);

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
  /** 我的位置: the phone's position on the map, followed while the page is open; the first fix centres the view. */
  let watch: number | null = null;
  const locate = () => {
    if (!('geolocation' in navigator)) {
      state.here = { error: ui('location_unsupported') };
      draw();
      return;
    }
    if (watch !== null) navigator.geolocation.clearWatch(watch);
    let first = true;
    watch = navigator.geolocation.watchPosition(
      (pos) => {
        const accuracyM = Math.round(pos.coords.accuracy);
        map?.showHere({ lon: pos.coords.longitude, lat: pos.coords.latitude, accuracyM }, first);
        first = false;
        state.here = { accuracyM };
        draw();
      },
      (err) => {
        // said in the clerk's words, not the browser's
        const why = { 1: 'location_denied', 2: 'location_unavailable', 3: 'location_timeout' } as const;
        state.here = {
          error: err.code in why ? ui(why[err.code as 1 | 2 | 3]) : ui('location_failed', { reason: err.message }),
        };
        draw();
      },
      { enableHighAccuracy: true, timeout: 15_000 },
    );
  };
  nav.onLeave(() => {
    if (watch !== null) navigator.geolocation.clearWatch(watch);
  });
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
  const bulkable = bulkActions(ctx.meta, ctx.me.role).length > 0;
  /**
   * "Every patch that matches" for a bulk move: the bulk request's filter is the month, town, state and
   * class; with another filter set (relation, source, check, overdue, area) only the rows ticked are moved.
   */
  const bulkFilter = () => {
    const f = view.filters;
    if (f.relation || f.source || f.check || f.overdue || f.min_area_m2 || state.total === null) return null;
    const select: Record<string, string> = { month: view.month };
    const town = ownTown ?? (f.town || null);
    if (town) select.town = town;
    if (f.status) select.status = f.status;
    if (f.class) select.class = f.class;
    const what = [
      view.month,
      town && exportTown()?.name,
      f.status && t('status', f.status),
      f.class && t('class', f.class),
    ]
      .filter(Boolean)
      .join(' · ');
    return { select, total: state.total, what };
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
        ${fixed === null ? html`<option value="">${ui('all')}</option>` : nothing}
        ${options(entries, fixed ?? view.filters[name])}
      </select></label
    >`;
  // a town user's list is their town's (the API scopes it): the choice shows it, fixed
  const ownTown = ctx.me.role === 'town' ? ctx.me.townCode : null;
  const filters = html`<form class="filters" id="filters" @change=${onFilter}>
    <label
      >${ui('col_month')}
      <select name="month">
        ${options(
          monthsOf(ctx).map((m) => [m, m]),
          month,
        )}
      </select></label
    >
    ${filter(
      ui('col_town'),
      'town',
      report.towns
        .filter((t) => ownTown === null || t.town_code === ownTown)
        // the town's own clerk knows its code (and a phone's half-width field cut it): the name alone
        .map((t) => [t.town_code, ownTown ? t.town_name : `${t.town_name} ${t.town_code}`]),
      ownTown,
    )}
    ${filter(ui('col_status'), 'status', choices('status'))} ${filter(ui('col_class'), 'class', choices('class'))}
    ${filter(ui('col_relation'), 'relation', choices('relation'))}
    ${filter(ui('patch_attr_source'), 'source', choices('source'))}
    ${filter(ui('map_filter_check'), 'check', choices('lookback'))}
    ${filter(ui('map_filter_overdue'), 'overdue', [
      ['true', ui('overdue')],
      ['false', ui('map_not_overdue')],
    ])}
    <label
      >${ui('map_min_area')}
      <input name="min_area_m2" type="number" min="0" step="10" .value=${view.filters.min_area_m2}
    /></label>
  </form>`;

  const table = () =>
    html`<table id="patch-table">
      <thead>
        <tr>
          ${
            bulkable
              ? html`<th>
                  ${tickAll(
                    state.bulk,
                    state.rows.map((p) => p.code),
                    draw,
                  )}
                </th>`
              : nothing
          }
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
                ${ui(label)}
              </th>`,
          )}
        </tr>
      </thead>
      <tbody>
        ${
          state.total === 0
            ? html`<tr id="patch-empty">
                <td colspan=${COLUMNS.length + (bulkable ? 1 : 0)}>${ui('map_no_patches', { month: view.month })}</td>
              </tr>`
            : nothing
        }
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
              ${bulkable ? html`<td>${tick(state.bulk, p.code, draw)}</td>` : nothing}
              ${COLUMNS.map(([key, , cell]) => html`<td class=${key}>${cell(p)}</td>`)}
            </tr>`,
        )}
      </tbody>
    </table>`;

  const reportCard = () => {
    const r = state.report;
    if (!r) return nothing;
    if (!r.outline)
      return html`<div class="report-card" id="report-card">
        <span id="report-hint">${ui('map_report_hint', { month })}</span>
        <button type="button" id="report-cancel" @click=${cancelReport}>${ui('patch_form_cancel')}</button>
      </div>`;
    return html`<form class="report-card" id="report-form" @submit=${submitReport}>
      <strong>${ui('map_report_title', { month })}</strong>
      <label
        >${ui('patch_attr_source')}
        <select
          name="source"
          @change=${(e: Event) => (r.source = (e.target as HTMLSelectElement).value as ReportDraft['source'])}
        >
          ${options(
            (['patrol', 'complaint'] as const).map((s) => [s, t('source', s)]),
            r.source,
          )}
        </select></label
      >
      <fieldset class="visible">
        <legend>${ui('map_report_visible_question', { month, baseline: baseline ?? '–' })}</legend>
        ${(
          [
            [true, 'map_report_visible_yes'],
            [false, 'map_report_visible_no'],
          ] as const
        ).map(
          ([value, key]) =>
            html`<label class="check"
              ><input
                type="radio"
                name="visible"
                value=${String(value)}
                .checked=${r.visible === value}
                @change=${() => {
                  r.visible = value;
                  draw();
                }}
              />
              ${ui(key, { month, baseline: baseline ?? '–' })}</label
            >`,
        )}
      </fieldset>
      <label
        >${ui('map_report_note')}
        <textarea
          name="note"
          rows="2"
          maxlength="2000"
          .value=${r.note}
          @input=${(e: Event) => (r.note = (e.target as HTMLTextAreaElement).value)}
        ></textarea>
      </label>
      ${r.failure ? html`<div class="error" id="report-error">${errorMessage(r.failure)}</div>` : nothing}
      <div class="buttons">
        <button type="submit" id="report-submit" ?disabled=${r.busy || r.visible === null}>
          ${ui('map_report_submit')}
        </button>
        <button type="button" id="report-redraw" ?disabled=${r.busy} @click=${startReport}>
          ${ui('map_report_redraw')}
        </button>
        <button type="button" id="report-cancel" ?disabled=${r.busy} @click=${cancelReport}>
          ${ui('patch_form_cancel')}
        </button>
      </div>
    </form>`;
  };

  const popup = () => {
    const p = state.popup?.patch;
    if (!p) return html`<div id="popup" class="popup" hidden></div>`;
    return html`<div id="popup" class="popup" style="left:${state.popup!.pixel[0]}px;top:${state.popup!.pixel[1]}px">
      <strong>${p.code}</strong> ${p.town_name} · ${fmt(p.area_m2)} m²<br />${statusBadge(p)}
      <a href=${href(`/patch/${encodeURIComponent(p.code)}`)}>${ui('map_open_patch')}</a>
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
                  : html`<div>${ui('map_count', { count: state.total, month })}</div>`
            }
          </div>
          ${bulkBar(ctx, state.bulk, bulkFilter(), draw, load)}
          <div id="list">${table()}</div>
          ${
            state.total !== null && state.rows.length < state.total
              ? html`<button type="button" id="list-more" ?disabled=${state.more} @click=${() => void loadMore()}>
                  ${ui('todo_more', { shown: state.rows.length, total: state.total })}
                </button>`
              : nothing
          }
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
          <div class="here">
            <button type="button" id="locate" @click=${locate}>${ui('map_locate')}</button>
            ${
              canReport && !state.report
                ? html`<button type="button" id="report-start" @click=${startReport}>${ui('map_report')}</button>`
                : nothing
            }
            ${state.queued ? html`<span id="report-queued">${state.queued}</span>` : nothing}
            ${
              state.here
                ? html`<span id="here-msg" class=${'error' in state.here ? 'error' : ''}
                    >${'error' in state.here ? state.here.error : ui('map_here', { m: state.here.accuracyM })}</span
                  >`
                : nothing
            }
          </div>
          <div class="legend">
            ${LEGEND_STATES.map(
              (s) => html`<div><span style="border-color:${STATUS_COLOUR[s]}"></span>${t('status', s)}</div>`,
            )}
            <div><span style="border-color:${OVERDUE_COLOUR};border-style:dashed"></span>${ui('overdue')}</div>
          </div>
          <div class="swipe">
            <span id="swipe-before">${baseline ? ui('before_month', { month: baseline }) : ui('no_before_month')}</span>
            <input
              id="swipe"
              type="range"
              min="0"
              max="100"
              .value=${String(state.swipe)}
              aria-label=${ui('map_swipe_label')}
              @input=${(e: Event) => setSwipe(Number((e.target as HTMLInputElement).value))}
            />
            <span id="swipe-after">${ui('after_month', { month })}</span>
          </div>
          ${popup()} ${reportCard()}
        </div>
      </div>`,
      ctx.main,
    );

  /** Counts the list's loads from the start, so that a next page fetched for an earlier one is dropped. */
  let generation = 0;

  /** The list's query: the view's month, order and filters, a page of PAGE. */
  function listQuery(): URLSearchParams {
    const q = new URLSearchParams({ month: view.month, sort: view.sort, dir: view.dir, limit: String(PAGE) });
    for (const [k, v] of Object.entries(view.filters)) if (v) q.set(k, v);
    return q;
  }

  /** The next page of the list, drawn beside the patches already on the map. */
  async function loadMore() {
    const asked = generation;
    const q = listQuery();
    // in code order from where the last page ended; in another order by how many are shown
    if (view.sort === 'code' && state.nextAfter) q.set('after', state.nextAfter);
    else q.set('offset', String(state.rows.length));
    state.more = true;
    draw();
    try {
      const fc = await api(`/api/map/patches?${q}`);
      // the list was asked for again meanwhile (another filter or order): this page belongs to the old one
      if (nav.stale() || asked !== generation) return;
      map?.addPatches(fc);
      state.rows = [...state.rows, ...fc.features.map((f) => f.properties)];
      state.total = fc.total;
      state.nextAfter = fc.next_after;
      state.failure = null;
    } catch (err) {
      state.failure = err;
    } finally {
      state.more = false;
    }
    draw();
  }

  async function load() {
    generation += 1;
    const q = listQuery();
    try {
      const fc = await api(`/api/map/patches?${q}`);
      if (nav.stale()) return;
      map?.setPatches(fc);
      state.rows = fc.features.map((f) => f.properties);
      state.total = fc.total;
      state.nextAfter = fc.next_after;
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
    // a tap while drawing an outline is a corner, not a choice of patch
    if (state.report) return;
    state.popup = p ? { patch: p, pixel } : null;
    select(p?.code ?? null, false);
  });
  // the boundaries at the detail of the view's zoom level, fetched again when it changes (a city's at full
  // detail are megabytes: half a minute on a phone's slow line for an overview that cannot show them)
  let townLevel = -1;
  const loadTowns = () => {
    const view = map?.map.getView();
    const zoom = view?.getZoom();
    if (zoom === undefined) return;
    const level = Math.max(0, Math.min(ctx.config.tileGrid.resolutions.length - 1, Math.round(zoom)));
    if (level === townLevel) return;
    townLevel = level;
    api(`/api/map/towns?z=${level}` as const)
      .then((fc) => {
        if (level === townLevel) map?.setTowns(fc);
      })
      .catch(() => {
        // the boundaries are context: the map works without them (and asks again at the next move)
        if (level === townLevel) townLevel = -1;
      });
  };
  map.map.on('moveend', loadTowns);
  loadTowns();
  await load();
}
