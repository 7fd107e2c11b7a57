/**
 * Headers that describe one connection, not the message (RFC 9110 7.6.1), plus those a proxy
 * must set itself (`host`, `expect`, `content-length` is handled separately). Never copied in
 * either direction.
 */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'host',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
]);

/** True for a header that must not cross a proxy: the set above, `proxy-*`, and any named in `Connection`. */
export function isHopByHop(name: string, connectionTokens: ReadonlySet<string> = new Set()): boolean {
  const n = name.toLowerCase();
  return HOP_BY_HOP.has(n) || n.startsWith('proxy-') || connectionTokens.has(n);
}

/** The header names listed in a `Connection` header (`Connection: close, x-foo`). */
export function connectionTokens(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(text.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== ''));
}
