/**
 * The outbox: a photo, a verdict or a note that the network could not carry (a clerk at a site with
 * no signal) is kept on the phone, in IndexedDB, and sent in the order it was made when the signal
 * returns — at once on the browser's `online` event, else every RETRY_MS, or when the clerk taps
 * 立即发送. A request the server refuses once it arrives (the case moved on meanwhile: 409; the
 * patch went to another town: 404) stays in the list with the server's own words until the clerk
 * dismisses it. Actions carry their request key, so one the server took before the answer was
 * lost is not applied twice.
 */

const DB_NAME = 'tuban';
const STORE = 'outbox';
const RETRY_MS = 20_000;

export interface OutboxItem {
  id?: number;
  /** Whose request it is: sent only while that user is signed in. */
  username: string;
  method: 'POST';
  path: string;
  body: string | Blob;
  contentType: string;
  /** What it is, in words: 上传 现场.jpg 到 350206-202403-0002. */
  label: string;
  code: string;
  at: string;
  failed?: { status: number; message: string };
}

/**
 * Where a write may wait for the signal: a photo, an action or a note on a patch, and a report of a new
 * one (上报图斑: its request key makes a second sending no second patch).
 */
export const QUEUEABLE = /^\/api\/patches(\/[^/?]+\/(actions\/[a-z_]+|evidence|notes))?(\?|$)/;

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, work: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const req = work(db.transaction(STORE, mode).objectStore(STORE));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } finally {
    db.close();
  }
}

export const outbox = {
  add: (item: OutboxItem) => tx('readwrite', (s) => s.add(item)).then(() => changed()),
  all: () => tx<OutboxItem[]>('readonly', (s) => s.getAll() as IDBRequest<OutboxItem[]>),
  remove: (id: number) => tx('readwrite', (s) => s.delete(id)).then(() => changed()),
  put: (item: OutboxItem) => tx('readwrite', (s) => s.put(item)).then(() => changed()),
};

const listeners = new Set<() => void>();
/** Called whenever the outbox changes (added, sent, refused, dismissed). */
export function onOutboxChange(f: () => void): void {
  listeners.add(f);
}
function changed(): void {
  for (const f of listeners) f();
}

export interface Sender {
  /** The signed-in user's name and token; null: nobody is, nothing is sent. */
  who: () => { username: string; token: string } | null;
  language: () => string;
  /** After something was sent: the page shows the new state. */
  sent: (codes: string[]) => void;
}

let flushing: Promise<void> | null = null;

/**
 * Whether the page holds input not yet sent (a reported patch being drawn or described): what the outbox
 * sends meanwhile does not redraw the page under it, which would throw the input away.
 */
export const drafting = { open: false };

/** Sends what waits, oldest first; stops at the first network failure (still no signal). One round at a time. */
export function flushOutbox(sender: Sender): Promise<void> {
  // cleared when the round settles, by `.finally`, which runs after this assignment even for a round that
  // ends at once (nobody signed in yet: the login page). Cleared inside the round, it was cleared before
  // being set, and no round ever ran again until the page was reloaded.
  flushing ??= sendWaiting(sender).finally(() => {
    flushing = null;
  });
  return flushing;
}

async function sendWaiting(sender: Sender): Promise<void> {
  const sent: string[] = [];
  try {
    const me = sender.who();
    if (!me) return;
    for (const item of await outbox.all()) {
      if (item.failed || item.username !== me.username) continue;
      let res: Response;
      try {
        res = await fetch(item.path, {
          method: item.method,
          body: item.body,
          headers: {
            authorization: `Bearer ${me.token}`,
            'accept-language': sender.language(),
            'content-type': item.contentType,
          },
        });
      } catch {
        return; // no signal yet: the rest wait with it, in order
      }
      if (res.status === 401 || res.status === 503) return; // signed out, or the server busy: later
      if (res.ok) {
        await outbox.remove(item.id!);
        sent.push(item.code);
        continue;
      }
      const body = (await res.json().catch(() => ({}))) as { message?: string };
      await outbox.put({ ...item, failed: { status: res.status, message: body.message ?? res.statusText } });
    }
  } finally {
    if (sent.length) sender.sent(sent);
  }
}

/** Sends on the browser's `online` event and every RETRY_MS while something waits. */
export function startOutbox(sender: Sender): void {
  window.addEventListener('online', () => void flushOutbox(sender));
  setInterval(() => {
    void outbox.all().then((items) => {
      if (items.some((i) => !i.failed)) void flushOutbox(sender);
    });
  }, RETRY_MS);
  void flushOutbox(sender);
}

/** The kept API answers of every user on this phone, dropped at sign-out. */
export async function forgetKeptAnswers(): Promise<void> {
  if (!('caches' in window)) return;
  for (const name of await caches.keys()) if (name.startsWith('tuban-api-')) await caches.delete(name);
}
