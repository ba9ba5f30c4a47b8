/**
 * The router: the view lives in the URL's hash, path and query — `#/map?month=2024-03&status=dispatched`,
 * `#/patch/350206-202403-0001` — so a link or a reload reproduces what the user saw. Routes are
 * patterns (regexparam); each navigation gets a number, and a page that awaited while the user moved on
 * sees `stale()` and stops.
 */
import { parse } from 'regexparam';

export interface Route {
  /** The pattern that matched, e.g. '/patch/:code'. */
  pattern: string;
  params: Record<string, string>;
  query: URLSearchParams;
}

export interface Navigation {
  route: Route;
  /** True once the user has gone elsewhere: the page stops drawing. */
  stale: () => boolean;
  /** Runs when the user leaves this view (timers, the map). */
  onLeave: (fn: () => void) => void;
}

export function currentLocation(): { path: string; query: URLSearchParams } {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?', 2);
  return { path, query: new URLSearchParams(query) };
}

/** The hash for a path and query; empty query values are left out. */
export function href(path: string, query: Record<string, string | null | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

/** Go to a view (a new history entry). */
export function navigate(hash: string): void {
  location.hash = hash;
}

/** Change the query of the current view without drawing it again (filters, sort): the URL keeps the view. */
export function replaceQuery(query: Record<string, string | null | undefined>): void {
  const { path } = currentLocation();
  history.replaceState(null, '', href(path, query));
}

export function match(patterns: string[], path: string): Route | null {
  for (const pattern of patterns) {
    const { keys, pattern: re } = parse(pattern);
    const m = re.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    keys.forEach((k, i) => {
      if (m[i + 1] !== undefined) params[k] = decodeURIComponent(m[i + 1]);
    });
    return { pattern, params, query: currentLocation().query };
  }
  return null;
}

/** The view the user was on before this one (its hash), for a page's way back; null on the first view. */
let previous: string | null = null;
let here: string | null = null;
export const cameFrom = (): string | null => previous;

/** Calls `show` for every navigation (and once now); the previous view's leave handlers run first. */
export function startRouter(show: (nav: Navigation) => Promise<void>): () => Promise<void> {
  let seq = 0;
  let leave: (() => void)[] = [];
  const go = async () => {
    const mine = ++seq;
    if (location.hash !== here) {
      previous = here;
      here = location.hash;
    }
    for (const fn of leave) fn();
    leave = [];
    const { path, query } = currentLocation();
    const nav: Navigation = {
      route: { pattern: '', params: {}, query },
      stale: () => mine !== seq,
      onLeave: (fn) => leave.push(fn),
    };
    nav.route = { ...nav.route, ...(match(ROUTES, path) ?? { pattern: '/map', params: {} }) };
    await show(nav);
  };
  window.addEventListener('hashchange', () => void go().catch(reportError));
  return go;
}

/** Every view of the web app. */
export const ROUTES = ['/todo', '/map', '/patch/:code', '/board', '/batches', '/batches/:id', '/admin', '/models'];
