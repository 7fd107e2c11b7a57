import type { ServerResponse } from 'node:http';

/**
 * Response headers that belong to the request rather than to one outcome of it (CORS, the tus
 * `Tus-Resumable` every answer carries): an error answer keeps them, where it clears the headers a
 * handler had set for a success (`lib/app.ts` answerError).
 */
const sticky = new WeakMap<ServerResponse, Set<string>>();

export function setStickyHeader(res: ServerResponse, name: string, value: string): void {
  res.setHeader(name, value);
  let names = sticky.get(res);
  if (names === undefined) sticky.set(res, (names = new Set()));
  names.add(name.toLowerCase());
}

export function isStickyHeader(res: ServerResponse, name: string): boolean {
  return sticky.get(res)?.has(name.toLowerCase()) ?? false;
}
