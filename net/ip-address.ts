/**
 * Strict parsing of textual IP addresses into bytes, so the SSRF guard compares prefixes on
 * numbers, never on strings. Only the canonical forms that resolvers and the WHATWG URL parser
 * produce are accepted: anything odd (`0x7f.1`, `017700000001`, `127.1`) is not an address here,
 * and the guard fails closed on it.
 */

/** An IPv4 address as 4 bytes or an IPv6 address as 16 bytes. */
export type IpBytes = Uint8Array;

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/i;

/** `a.b.c.d`, four decimal octets without leading zeros (RFC 3986 3.2.2 `dec-octet`). */
export function parseIPv4(text: string): IpBytes | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i += 1) {
    const part = parts[i] as string;
    if (!DECIMAL_OCTET.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    bytes[i] = n;
  }
  return bytes;
}

/**
 * RFC 4291 2.2: eight groups of up to four hex digits, one `::` for a run of zero groups, and an
 * optional dotted IPv4 tail for the last 32 bits. A zone (`fe80::1%eth0`, RFC 6874) is ignored:
 * it picks an interface, not an address, and all zoned addresses are link-local anyway.
 */
export function parseIPv6(text: string): IpBytes | null {
  const zone = text.indexOf('%');
  const body = zone === -1 ? text : text.slice(0, zone);
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] === '' ? [] : (halves[0] as string).split(':');
  const tail = halves.length === 1 || halves[1] === '' ? [] : (halves[1] as string).split(':');
  const groups: number[] = [];
  const all = [...head, ...tail];
  let ipv4Tail: IpBytes | null = null;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    // The dotted form may only end the address (`::ffff:1.2.3.4`, never `1.2.3.4::`).
    if (halves.length === 2 && tail.length === 0) return null;
    ipv4Tail = parseIPv4(last);
    if (ipv4Tail === null) return null;
    (tail.length > 0 ? tail : head).pop();
  }
  const explicit = head.length + tail.length + (ipv4Tail === null ? 0 : 2);
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return null;
  for (const g of head) {
    if (!HEX_GROUP.test(g)) return null;
    groups.push(parseInt(g, 16));
  }
  for (let i = explicit; i < 8; i += 1) groups.push(0);
  for (const g of tail) {
    if (!HEX_GROUP.test(g)) return null;
    groups.push(parseInt(g, 16));
  }
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  if (ipv4Tail !== null) bytes.set(ipv4Tail, 12);
  return bytes;
}

/** Either form; IPv6 may come bracketed as in a URL host (`[::1]`). */
export function parseIp(text: string): IpBytes | null {
  if (text.startsWith('[') && text.endsWith(']')) return parseIPv6(text.slice(1, -1));
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

/** True when the first `bits` bits of `address` equal those of `prefix` (same length). */
export function inPrefix(address: IpBytes, prefix: IpBytes, bits: number): boolean {
  if (address.length !== prefix.length) return false;
  const whole = bits >> 3;
  for (let i = 0; i < whole; i += 1) if (address[i] !== prefix[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((address[whole] as number) & mask) === ((prefix[whole] as number) & mask);
}
