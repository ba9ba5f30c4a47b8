/// <reference lib="webworker" />
/**
 * The service worker: the app keeps working where the signal is weak or gone (a town clerk at a
 * building site). The shell (page, hashed bundle, manifest, icon) is kept per build and served
 * from the cache; what the API answered (the to-do, the patches opened, their chips and photos) is
 * asked of the network first and kept, per signed-in token, to be shown when the network fails or
 * is slower than OFFLINE_AFTER_MS. Writes are never answered from here: the page keeps the ones
 * the network refused in its outbox (offline.ts) and sends them when the signal returns.
 *
 * The server prepends the shell's paths and the build's version (server/web.ts).
 */
const sw = self as unknown as ServiceWorkerGlobalScope & { TUBAN_SHELL: string[]; TUBAN_VERSION: string };

const SHELL_CACHE = `tuban-shell-${sw.TUBAN_VERSION}`;
/** API answers are kept per token (its hash): another user on the same phone never reads them. */
const API_CACHE_PREFIX = 'tuban-api-';
/** Answers kept per user; the oldest go first. */
const API_KEEP = 800;
/** A network this slow is treated as gone when a kept answer exists (the kept one is shown, the fresh one still stored). */
const OFFLINE_AFTER_MS = 6000;
/** API reads not kept: sign-in, files made on demand, map tiles (too many), live progress and the health check. */
const NOT_KEPT = /^\/api\/(login|logout|health|export|map\/tiles|batches\/[^/]+\/progress|openapi)/;
/**
 * What every page asks first and what hardly changes (who I am, the map's settings, the words for
 * codes): the kept answer at once, the network's stored for next time. Each costs a round trip on 3G.
 */
const KEPT_FIRST = /^\/api\/(me|map\/config|meta)$/;

sw.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      // from the browser's HTTP cache where the page just loaded them (the hashed files never change):
      // installing on a weak signal does not fetch the bundle a second time while the page needs the line
      await cache.addAll(sw.TUBAN_SHELL);
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys())
        if (name.startsWith('tuban-shell-') && name !== SHELL_CACHE) await caches.delete(name);
      await sw.clients.claim();
    })(),
  );
});

/**
 * When this worker last saw a write go to the API. For a while after one, a slow answer is waited for
 * rather than replaced by the kept one: the page reads back what it just changed, and showing the state
 * from before the change (a verdict that seems not to have happened) is worse than waiting.
 */
let lastWriteAt = 0;
const FRESH_AFTER_WRITE_MS = 120_000;

sw.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin) return;
  if (req.method !== 'GET') {
    if (url.pathname.startsWith('/api/')) lastWriteAt = Date.now();
    return;
  }
  if (url.pathname.startsWith('/api/')) {
    if (!NOT_KEPT.test(url.pathname)) event.respondWith(apiAnswer(req));
    return;
  }
  if (req.mode === 'navigate' || sw.TUBAN_SHELL.includes(url.pathname)) event.respondWith(shell(req, url));
});

/** The shell from this build's cache (the page for any navigation), else the network. */
async function shell(req: Request, url: URL): Promise<Response> {
  const cache = await caches.open(SHELL_CACHE);
  const hit = await cache.match(req.mode === 'navigate' ? '/' : url.pathname);
  return hit ?? fetch(req);
}

/** The last token's cache name: every API request asks, and a phone has one user at a time. */
let lastCache: { token: string; name: string } | null = null;
async function apiCacheName(req: Request): Promise<string> {
  const token = /^Bearer (\S+)$/.exec(req.headers.get('authorization') ?? '')?.[1] ?? 'anonymous';
  if (lastCache?.token === token) return lastCache.name;
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  lastCache = { token, name: `${API_CACHE_PREFIX}${hex.slice(0, 24)}` };
  return lastCache.name;
}

/** The network's answer, kept; the kept one when the network fails or is too slow; else a refusal in words. */
async function apiAnswer(req: Request): Promise<Response> {
  const cache = await caches.open(await apiCacheName(req));
  const fresh = fetch(req).then(async (res) => {
    if (res.status === 200) {
      await cache.put(req, res.clone());
      void trim(cache);
    }
    return res;
  });
  const kept = await cache.match(req);
  if (!kept) return fresh.catch(() => offline());
  if (KEPT_FIRST.test(new URL(req.url).pathname)) {
    fresh.catch(() => undefined);
    return kept;
  }
  // just after a write, the kept answer stands in only for a network that fails, not for a slow one
  if (Date.now() - lastWriteAt < FRESH_AFTER_WRITE_MS) return fresh.catch(() => marked(kept));
  const slow = new Promise<'slow'>((r) => setTimeout(() => r('slow'), OFFLINE_AFTER_MS));
  try {
    const first = await Promise.race([fresh, slow]);
    if (first !== 'slow') return first;
  } catch {
    // the network failed: the kept answer below
  }
  fresh.catch(() => undefined);
  return marked(kept);
}

/** A kept answer, marked so the page can say it shows what was kept. */
function marked(kept: Response): Response {
  const headers = new Headers(kept.headers);
  headers.set('x-tuban-offline', '1');
  return new Response(kept.body, { status: kept.status, statusText: kept.statusText, headers });
}

/** No network and nothing kept: the page says so in the reader's words (ui 'offline_not_kept'). */
function offline(): Response {
  return new Response(JSON.stringify({ error: 'offline', code: 'offline', message: 'offline, not kept' }), {
    status: 503,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-tuban-offline': '1' },
  });
}

async function trim(cache: Cache): Promise<void> {
  const keys = await cache.keys();
  for (const k of keys.slice(0, Math.max(0, keys.length - API_KEEP))) await cache.delete(k);
}
