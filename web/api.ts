/**
 * The API client: every request with the signed-in user's token, errors as ApiError with the
 * server's message, the answer typed by route with the server's own response schemas (api/routes.ts).
 */
import type { ErrorBody } from '../api/responses.ts';
import type { GetAnswerTo, PostAnswerTo } from '../api/routes.ts';
import { locale, t, ui } from './locale.ts';
import { outbox, QUEUEABLE } from './offline.ts';

const TOKEN_KEY = 'tuban.token';
const USER_KEY = 'tuban.user';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Partial<ErrorBody> = {},
  ) {
    super(message);
  }
}

/** A write the network could not carry, kept in the outbox to be sent when the signal returns. */
export class QueuedError extends ApiError {
  constructor(readonly what: string) {
    super(0, ui('outbox_queued', { what }));
  }
}

/** The token (and whose it is), kept in localStorage so a reload stays signed in. */
export const session = {
  get token(): string | null {
    return localStorage.getItem(TOKEN_KEY);
  },
  set token(value: string | null) {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  },
  get username(): string | null {
    return localStorage.getItem(USER_KEY);
  },
  set username(value: string | null) {
    if (value) localStorage.setItem(USER_KEY, value);
    else localStorage.removeItem(USER_KEY);
  },
  /** Called when the server answers 401 to a signed-in request: the token expired or was revoked. */
  onSignedOut: () => {},
};

/** The answer to `path` (GET, or `init`'s method) with the user's token and language; refusals as ApiError. */
async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = session.token;
  if (token) headers.set('authorization', `Bearer ${token}`);
  // the server's refusals come in the language the user reads
  headers.set('accept-language', locale());
  if (typeof init.body === 'string') headers.set('content-type', 'application/json');
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers });
  } catch (err) {
    // no signal: a photo, an action or a note waits in the outbox; anything else fails as it is
    const method = (init.method ?? 'GET').toUpperCase();
    if (method === 'POST' && QUEUEABLE.test(path) && session.username && init.body) {
      const what = describe(path);
      await outbox.add({
        username: session.username,
        method: 'POST',
        path,
        body: init.body as string | Blob,
        contentType: headers.get('content-type') ?? 'application/octet-stream',
        label: what,
        code: decodeURIComponent(path.split('?')[0].split('/')[3] ?? ''),
        at: new Date().toISOString(),
      });
      throw new QueuedError(what);
    }
    void err;
    throw new ApiError(0, ui('no_signal'));
  }
  if (res.headers.get('x-tuban-offline')) markOffline();
  else if (offlineState.showingKept) {
    offlineState.showingKept = false;
    offlineState.onChange();
  }
  if (res.status === 401 && path !== '/api/login') {
    session.token = null;
    session.onSignedOut();
    throw new ApiError(401, ui('signed_out'));
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({ message: res.statusText }))) as Partial<ErrorBody>;
    // the service worker's answer when there is no network and nothing was kept
    if (body.code === 'offline' && res.headers.get('x-tuban-offline'))
      throw new ApiError(res.status, ui('offline_not_kept'), body);
    throw new ApiError(res.status, body.message ?? res.statusText, body);
  }
  return res;
}

/** A queued write in words: 核查（350206-202403-0002）, 上传 现场.jpg（350206-202403-0002）. */
function describe(path: string): string {
  const [, , , rawCode, kind, action] = path.split('?')[0].split('/');
  if (!rawCode) return ui('outbox_report');
  const code = decodeURIComponent(rawCode);
  if (kind === 'actions') return ui('outbox_action', { action: t('action', action), code });
  if (kind === 'evidence') {
    const file = new URLSearchParams(path.split('?')[1] ?? '').get('filename') ?? '';
    return ui('outbox_photo', { file, code });
  }
  return ui('outbox_note', { code });
}

/** Pages shown from what the phone kept, not from the network: said in the header until a fresh answer comes. */
export const offlineState = { showingKept: false, onChange: () => {} };
function markOffline(): void {
  if (offlineState.showingKept) return;
  offlineState.showingKept = true;
  offlineState.onChange();
}

/** An answer as the server gave it: JSON parsed, a Blob for images and files, null for 204. */
async function answer(res: Response): Promise<unknown> {
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') ?? '';
  return type.includes('json') ? res.json() : res.blob();
}

/**
 * GET (or `init`'s method) `path`, answered as the route's schema says (api/routes.ts: a path not
 * listed there, or one not known until it runs, answers `unknown`).
 */
export async function api<P extends string>(path: P, init: RequestInit = {}): Promise<GetAnswerTo<P>> {
  return (await answer(await request(path, init))) as GetAnswerTo<P>;
}

/** POST a JSON body; the answer as the route's schema says (api/routes.ts). */
export async function post<P extends string>(path: P, body: unknown): Promise<PostAnswerTo<P>> {
  return (await answer(await request(path, { method: 'POST', body: JSON.stringify(body) }))) as PostAnswerTo<P>;
}

/** An image or file behind the token, as an object URL (null for 204: nothing to show). Release it with URL.revokeObjectURL. */
export async function blobUrl(path: string): Promise<string | null> {
  const b = (await answer(await request(path))) as Blob | null;
  return b ? URL.createObjectURL(b) : null;
}

/** Show an image behind the token; its object URL is released once the image has it. */
export async function showImage(img: HTMLImageElement, path: string, empty = ''): Promise<boolean> {
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

/** Download a file behind the token, under the name the server gives it (Content-Disposition filename*). */
export async function download(path: string): Promise<void> {
  const res = await request(path);
  if (res.status === 204) return;
  const named = /filename\*=UTF-8''([^;]+)/i.exec(res.headers.get('content-disposition') ?? '');
  const url = URL.createObjectURL(await res.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = named ? decodeURIComponent(named[1]) : (path.split('/').pop()?.split('?')[0] ?? 'download');
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** `/path/with/:code` made safe: each value URI-encoded. */
export const path = (strings: TemplateStringsArray, ...values: (string | number)[]): string =>
  strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(String(values[i])) : ''), '');
