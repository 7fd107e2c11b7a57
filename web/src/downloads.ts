/**
 * Download links (`/files/<id>`) with AUTH_TOKEN set: a plain link cannot send the bearer token,
 * so a service worker (sw.ts) adds it to navigations under /files/. The page hands it the token
 * right before each click. Without a token links work as they are.
 */
import { currentToken } from './auth.js';

/** A download frame is removed after this long (the download goes on without it). */
const FRAME_LIFETIME_MS = 60_000;

let registration: Promise<ServiceWorker | null> | null = null;

/** The active worker, registering it the first time; null where service workers are unavailable (plain http off localhost). */
function worker(): Promise<ServiceWorker | null> {
  registration ??= (async () => {
    if (!('serviceWorker' in navigator)) return null;
    try {
      const reg = await navigator.serviceWorker.register('/ui/sw.js', { scope: '/files/', type: 'classic' });
      return await activeWorker(reg);
    } catch {
      return null;
    }
  })();
  return registration;
}

/** `navigator.serviceWorker.ready` only covers workers whose scope holds this page, so wait by hand. */
function activeWorker(reg: ServiceWorkerRegistration): Promise<ServiceWorker | null> {
  if (reg.active !== null) return Promise.resolve(reg.active);
  const pending = reg.installing ?? reg.waiting;
  if (pending === null) return Promise.resolve(null);
  return new Promise((resolve) => {
    pending.addEventListener('statechange', () => {
      if (pending.state === 'activated') resolve(pending);
      if (pending.state === 'redundant') resolve(reg.active);
    });
  });
}

/** Gives the worker the token and waits until it has it (at most a second). */
async function handOver(token: string | null): Promise<boolean> {
  const active = await worker();
  if (active === null) return false;
  const channel = new MessageChannel();
  const acknowledged = new Promise<boolean>((resolve) => {
    channel.port1.onmessage = () => resolve(true);
    setTimeout(() => resolve(false), 1000);
  });
  active.postMessage({ type: 'token', token }, [channel.port2]);
  return acknowledged;
}

export function setUpDownloads(onProblem: (message: string) => void): void {
  document.addEventListener('click', (event) => {
    const link = (event.target as Element | null)?.closest?.('a[data-file-link]');
    if (!(link instanceof HTMLAnchorElement)) return;
    const token = currentToken();
    if (token === null) return; // the link works as it is
    event.preventDefault();
    void handOver(token).then((ok) => {
      if (!ok) return onProblem('Downloads with a token need a browser with service workers and a secure origin (HTTPS or localhost).');
      // Chrome sends <a download> clicks around service workers, so the download is a
      // navigation of a hidden frame instead: the worker sees it, and this page stays as it is.
      const frame = document.createElement('iframe');
      frame.hidden = true;
      frame.src = link.href;
      document.body.append(frame);
      setTimeout(() => frame.remove(), FRAME_LIFETIME_MS);
    });
  });
}
