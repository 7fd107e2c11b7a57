/**
 * The bearer token (AUTH_TOKEN on the server): kept for this tab only (sessionStorage, never
 * localStorage), sent on every API call. A 401 anywhere asks for it (token-prompt.ts); work that
 * needs it waits in `tokenAccepted()` until a token the server takes is entered.
 */

const TOKEN_KEY = 'sluice.token';

const events = new EventTarget();

export function currentToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** `Authorization` for the current token, or nothing. */
export function authHeaders(): Record<string, string> {
  const token = currentToken();
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

/** The server answered 401: drop the token we have (it is wrong or gone) and ask for one. */
export function tokenRejected(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  events.dispatchEvent(new Event('needed'));
}

/** A token the server took (token-prompt.ts checks it first). */
export function acceptToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
  events.dispatchEvent(new Event('accepted'));
}

export function onTokenNeeded(listener: () => void): void {
  events.addEventListener('needed', listener);
}

export function onTokenAccepted(listener: () => void): void {
  events.addEventListener('accepted', listener);
}

/** Resolves at the next accepted token. */
export function tokenAccepted(): Promise<void> {
  return new Promise((resolve) => events.addEventListener('accepted', () => resolve(), { once: true }));
}
