/**
 * tuban web app: the month's patches on a map over the month's own imagery (before/after swipe),
 * the patch list and patch pages with the actions a role may take, the supervisor board and the
 * batch page. lit-html templates (values escaped), OpenLayers for the map, bundled once by
 * `npm run build`; every request goes to the same API with the user's token, so the web app sees
 * exactly what the API lets the user see.
 *
 * Layout: api.ts (the client), router.ts (views in the URL), context.ts (what pages share),
 * pages/ (one file per view), components/ (pieces several pages use), labels.ts (words for codes).
 */
import 'ol/ol.css';
import './styles/base.css';
import './styles/map.css';
import './styles/patch.css';
import './styles/phone.css';
import { api, ApiError, offlineState, post, session } from './api.ts';
import { renderOutbox } from './components/outbox.ts';
import { drafting, flushOutbox, forgetKeptAnswers, onOutboxChange, startOutbox, type Sender } from './offline.ts';
import { locale } from './locale.ts';
import { showError } from './components/message.ts';
import type { AppContext } from './context.ts';
import { renderBatchesPage } from './pages/batches.ts';
import { renderAdminPage } from './pages/admin.ts';
import { renderBoardPage } from './pages/board.ts';
import { renderFrame } from './pages/frame.ts';
import { renderLogin } from './pages/login.ts';
import { renderMapPage } from './pages/map.ts';
import { renderModelsPage } from './pages/models.ts';
import { renderPatchPage } from './pages/patch.ts';
import { renderTodoPage } from './pages/todo.ts';
import { currentLocation, navigate, startRouter, type Navigation } from './router.ts';

const main = document.querySelector<HTMLElement>('#main')!;
let ctx: AppContext | null = null;

const PAGES: Record<string, (ctx: AppContext, nav: Navigation) => Promise<void>> = {
  '/todo': renderTodoPage,
  '/map': renderMapPage,
  '/patch/:code': renderPatchPage,
  '/board': renderBoardPage,
  '/batches': renderBatchesPage,
  '/batches/:id': renderBatchesPage,
  '/admin': renderAdminPage,
  '/models': renderModelsPage,
};

function signedOut(): void {
  ctx = null;
  renderFrame(null, signOut);
  renderLogin(main, afterSignIn);
}

/** The server revokes the token, so a copy left behind (a shared computer) stops working too. */
function signOut(): void {
  post('/api/logout', {})
    .catch(() => undefined)
    .finally(() => {
      session.token = null;
      session.username = null;
      // what this phone kept of the user's cases goes with the sign-out (a shared phone)
      void forgetKeptAnswers();
      signedOut();
    });
}

async function afterSignIn(): Promise<void> {
  // a link the user followed before signing in is kept; otherwise the landing page of the role
  if (currentLocation().path.startsWith('/') && currentLocation().path !== '/' && location.hash) await show();
  else navigate(await landingPage());
}

/** A town office lands on what it owes (我的待办), an admin on the users; the others on the month's map. */
async function landingPage(): Promise<string> {
  ctx ??= await loadContext();
  return ctx.me.role === 'town' ? '#/todo' : ctx.me.role === 'admin' ? '#/admin' : '#/map';
}

async function loadContext(): Promise<AppContext> {
  const [me, config, meta] = await Promise.all([api('/api/me'), api('/api/map/config'), api('/api/meta')]);
  session.username = me.username;
  return { me, config, meta, main, month: null };
}

/** The outbox sends as whoever is signed in now; what it sent shows on the page at once. */
const sender: Sender = {
  who: () => (session.token && session.username ? { username: session.username, token: session.token } : null),
  language: () => locale(),
  // the page shows what was sent, unless the user is in the middle of input it would lose
  sent: () => {
    if (!drafting.open) void show().catch(reportError);
  },
};
const drawOutbox = () => void renderOutbox(session.username, () => void flushOutbox(sender));
onOutboxChange(drawOutbox);
offlineState.onChange = drawOutbox;
startOutbox(sender);
drawOutbox();
// the service worker keeps the app and the cases opened, for a weak signal or none (web/sw.ts)
if ('serviceWorker' in navigator) void navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => {});

session.onSignedOut = signedOut;
const show = startRouter(async (nav) => {
  if (!session.token) return signedOut();
  try {
    ctx ??= await loadContext();
    if (nav.stale()) return;
    if (currentLocation().path === '/') return navigate(await landingPage());
    renderFrame(ctx.me, signOut, () => void show().catch(reportError));
    await PAGES[nav.route.pattern]?.(ctx, nav);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401) && !nav.stale()) showError(main, err);
  }
});
void show().catch(reportError);
