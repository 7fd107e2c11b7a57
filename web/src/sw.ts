/**
 * Service worker for downloads with a token. A link cannot carry an `Authorization` header, so
 * with AUTH_TOKEN set a click on /files/<id> would be a 401. Registered with scope /files/, this
 * worker sees those navigations (and only those: the page itself is outside its scope, so its
 * uploads never pass through here) and sends them on with the token the page gave it. The
 * answer is streamed straight through: nothing is held in memory.
 *
 * Typed by hand: the WebWorker lib cannot be loaded beside the DOM lib of the page's tsconfig.
 */

interface FetchEventLike extends Event {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}

interface ExtendableEventLike extends Event {
  waitUntil(work: Promise<unknown>): void;
}

interface MessageEventLike extends Event {
  readonly data: unknown;
  readonly ports: readonly MessagePort[];
}

interface WorkerScope {
  readonly location: Location;
  readonly clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'fetch', listener: (event: FetchEventLike) => void): void;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEventLike) => void): void;
  addEventListener(type: 'message', listener: (event: MessageEventLike) => void): void;
}

const scope = self as unknown as WorkerScope;

/** The tab's token, as the page last sent it (the page sends it again before each download). */
let token: string | null = null;

scope.addEventListener('install', (event) => event.waitUntil(scope.skipWaiting()));
scope.addEventListener('activate', (event) => event.waitUntil(scope.clients.claim()));

scope.addEventListener('message', (event) => {
  const data = event.data as { type?: unknown; token?: unknown } | null;
  if (data?.type !== 'token') return;
  token = typeof data.token === 'string' && data.token !== '' ? data.token : null;
  event.ports[0]?.postMessage('ok');
});

scope.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (token === null || event.request.method !== 'GET' || url.origin !== scope.location.origin || !url.pathname.startsWith('/files/')) return;
  const headers = new Headers();
  // A resumed download asks for the rest with Range (and If-Range): keep those.
  for (const name of ['range', 'if-range']) {
    const value = event.request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  headers.set('authorization', `Bearer ${token}`);
  event.respondWith(asDownload(fetch(url.href, { headers, cache: 'no-store', redirect: 'manual' })));
});

/**
 * The page downloads through a hidden frame: an `inline` file (text, an image) would be shown in
 * the frame and never saved, so a successful answer is made an attachment. Its body is passed on
 * as the stream it is.
 */
async function asDownload(answer: Promise<Response>): Promise<Response> {
  const res = await answer;
  if (!res.ok) return res;
  const headers = new Headers(res.headers);
  const disposition = headers.get('content-disposition');
  headers.set('content-disposition', disposition === null ? 'attachment' : disposition.replace(/^\s*inline\b/i, 'attachment'));
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}
