import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { ForbiddenError } from '../lib/errors.js';
import { inPrefix, parseIPv4, parseIPv6, parseIp, type IpBytes } from './ip-address.js';

/**
 * The SSRF guard: which addresses `/fetch` may connect to. Everything that is not plain public
 * unicast is refused unless its host is in FETCH_ALLOW. The check runs on the address actually
 * connected to (in the socket's `lookup`), so a name that resolves to a private address, or
 * starts to after a first check (DNS rebinding), cannot get through.
 */

/** Why an address is refused. */
export type AddressClass =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unique-local'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'unparsable';

interface Range {
  readonly prefix: IpBytes;
  readonly bits: number;
  readonly class: AddressClass;
}

function v4(text: string, bits: number, cls: AddressClass): Range {
  return { prefix: parseIPv4(text) as IpBytes, bits, class: cls };
}
function v6(text: string, bits: number, cls: AddressClass): Range {
  return { prefix: parseIPv6(text) as IpBytes, bits, class: cls };
}

/** IANA IPv4 Special-Purpose Address Registry (RFC 6890), first match wins. */
const IPV4_RANGES: readonly Range[] = [
  v4('0.0.0.0', 8, 'unspecified'), // RFC 1122 3.2.1.3: "this host on this network"; Linux connects 0.0.0.0 to itself
  v4('10.0.0.0', 8, 'private'), // RFC 1918
  v4('100.64.0.0', 10, 'private'), // RFC 6598 shared address space (carrier-grade NAT)
  v4('127.0.0.0', 8, 'loopback'), // RFC 1122 3.2.1.3
  v4('169.254.0.0', 16, 'link-local'), // RFC 3927; 169.254.169.254 is the cloud metadata service
  v4('172.16.0.0', 12, 'private'), // RFC 1918
  v4('192.0.0.0', 24, 'reserved'), // RFC 6890 2.2.2 IETF protocol assignments (DS-Lite, NAT64 discovery)
  v4('192.0.2.0', 24, 'documentation'), // RFC 5737 TEST-NET-1
  v4('192.88.99.0', 24, 'reserved'), // RFC 7526: deprecated 6to4 relay anycast
  v4('192.168.0.0', 16, 'private'), // RFC 1918
  v4('198.18.0.0', 15, 'reserved'), // RFC 2544 benchmarking
  v4('198.51.100.0', 24, 'documentation'), // RFC 5737 TEST-NET-2
  v4('203.0.113.0', 24, 'documentation'), // RFC 5737 TEST-NET-3
  v4('224.0.0.0', 4, 'multicast'), // RFC 5771
  v4('255.255.255.255', 32, 'broadcast'), // RFC 919 limited broadcast (before 240/4, which holds it)
  v4('240.0.0.0', 4, 'reserved'), // RFC 1112 4: class E, reserved
];

/** IPv6 forms that carry an IPv4 address: the IPv4 address decides. */
interface Embedding {
  readonly prefix: IpBytes;
  readonly bits: number;
  /** Offset of the 4 IPv4 bytes. */
  readonly at: number;
  /** No longer used on the Internet: refused even around a public IPv4 address. */
  readonly deprecated: boolean;
}
function embedding(text: string, bits: number, at: number, deprecated: boolean): Embedding {
  return { prefix: parseIPv6(text) as IpBytes, bits, at, deprecated };
}
const IPV6_EMBEDDINGS: readonly Embedding[] = [
  embedding('::ffff:0:0', 96, 12, false), // RFC 4291 2.5.5.2 IPv4-mapped
  embedding('64:ff9b::', 96, 12, false), // RFC 6052 2.1 NAT64 well-known prefix
  embedding('2002::', 16, 2, false), // RFC 3056 2: 6to4
  embedding('::ffff:0:0:0', 96, 12, true), // RFC 2765 2.1 IPv4-translated (SIIT)
  embedding('::', 96, 12, true), // RFC 4291 2.5.5.1 IPv4-compatible; `::` and `::1` are matched before
];

/** IANA IPv6 Special-Purpose Address Registry (RFC 6890): exact addresses first, then the ranges. */
const IPV6_EXACT: readonly Range[] = [
  v6('::', 128, 'unspecified'), // RFC 4291 2.5.2
  v6('::1', 128, 'loopback'), // RFC 4291 2.5.3
];
const IPV6_RANGES: readonly Range[] = [
  v6('64:ff9b:1::', 48, 'private'), // RFC 8215 local-use NAT64: whatever it embeds is local
  v6('100::', 64, 'reserved'), // RFC 6666 discard-only
  v6('2001:db8::', 32, 'documentation'), // RFC 3849
  v6('2001::', 23, 'reserved'), // RFC 2928 IETF protocol assignments (Teredo, benchmarking, ORCHID)
  v6('3fff::', 20, 'documentation'), // RFC 9637
  v6('fc00::', 7, 'unique-local'), // RFC 4193
  v6('fe80::', 10, 'link-local'), // RFC 4291 2.5.6
  v6('fec0::', 10, 'private'), // RFC 3879: deprecated site-local
  v6('ff00::', 8, 'multicast'), // RFC 4291 2.7
];
/** RFC 4291 2.4 and the IANA IPv6 Address Space registry: only 2000::/3 is global unicast today. */
const IPV6_GLOBAL_UNICAST = v6('2000::', 3, 'reserved');

function classifyIPv4(bytes: IpBytes): AddressClass | null {
  return IPV4_RANGES.find((r) => inPrefix(bytes, r.prefix, r.bits))?.class ?? null;
}

function classifyIPv6(bytes: IpBytes): AddressClass | null {
  const exact = IPV6_EXACT.find((r) => inPrefix(bytes, r.prefix, r.bits));
  if (exact !== undefined) return exact.class;
  const carrier = IPV6_EMBEDDINGS.find((e) => inPrefix(bytes, e.prefix, e.bits));
  if (carrier !== undefined) {
    const inner = classifyIPv4(bytes.subarray(carrier.at, carrier.at + 4));
    if (inner !== null) return inner;
    return carrier.deprecated ? 'reserved' : null;
  }
  const range = IPV6_RANGES.find((r) => inPrefix(bytes, r.prefix, r.bits));
  if (range !== undefined) return range.class;
  return inPrefix(bytes, IPV6_GLOBAL_UNICAST.prefix, IPV6_GLOBAL_UNICAST.bits) ? null : 'reserved';
}

/**
 * The reason `address` (IPv4 or IPv6 text, as a resolver returns it or a URL host writes it)
 * must not be connected to, or null for a public unicast address. Text that is not a canonical
 * address is refused as `unparsable`: the guard fails closed.
 */
export function classifyAddress(address: string): AddressClass | null {
  const bytes = parseIp(address);
  if (bytes === null) return 'unparsable';
  return bytes.length === 4 ? classifyIPv4(bytes) : classifyIPv6(bytes);
}

/**
 * True when the URL's host is exempt from the guard: FETCH_ALLOW holds its host (`127.0.0.1`,
 * `[::1]`, `files.internal`) or host and port (`127.0.0.1:9000`; the scheme's default port
 * counts when the URL has none, RFC 3986 3.2.3). Hosts compare as the URL parser normalised
 * them (lower case, numeric IPv4 forms rewritten to dotted decimal).
 */
export function isAllowedHost(url: URL, allow: readonly string[]): boolean {
  if (allow.length === 0) return false;
  const host = url.hostname.toLowerCase();
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  if (allow.includes(host) || allow.includes(`${host}:${port}`)) return true;
  // An IPv6 entry may be written without brackets when it carries no port.
  return host.startsWith('[') && allow.includes(host.slice(1, -1));
}

function refuse(host: string, cls: AddressClass): ForbiddenError {
  // The class, not the address: the answer must not turn the server into an internal DNS oracle.
  return new ForbiddenError('FORBIDDEN_ADDRESS', `Refusing to connect to ${host}: its address is ${cls}, not public`);
}

/**
 * Throws ForbiddenError when the URL's host is an IP literal that is not public. Needed beside
 * the lookup because `net.connect` never calls `lookup` for a host that is already an address.
 */
export function assertPublicLiteral(url: URL): void {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(host) === 0) return;
  const cls = classifyAddress(host);
  if (cls !== null) throw refuse(url.hostname, cls);
}

/**
 * A `lookup` for `http.request` that resolves as usual, then refuses (ForbiddenError) when any
 * of the addresses is not public. With `all: true` (Node's happy-eyeballs connect asks for every
 * address) one bad address refuses the lot: a resolver mixing public and private answers is
 * exactly what a rebinding attack looks like. `resolve` is replaceable for tests.
 */
export function createGuardedLookup(resolve: LookupFunction = dnsLookup as LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, options, (err, address, family) => {
      if (err) return callback(err, address, family);
      const entries: LookupAddress[] = typeof address === 'string' ? [{ address, family: family ?? 0 }] : address;
      for (const entry of entries) {
        const cls = classifyAddress(entry.address);
        if (cls !== null) return callback(refuse(hostname, cls), options.all === true ? [] : '', undefined);
      }
      callback(null, address, family);
    });
  };
}

const guardedLookupAll = createGuardedLookup();

/**
 * The guard's verdict on a URL before anything is fetched (a fetch job at submission): throws
 * ForbiddenError for a non-public literal, or a name that resolves to a non-public address now.
 * A name that does not resolve is not refused here (the fetch reports it when it runs). Only a
 * first check: the connection itself is checked again, every time, in `lookup`.
 */
export async function assertPublicHost(url: URL, allow: readonly string[]): Promise<void> {
  if (isAllowedHost(url, allow)) return;
  assertPublicLiteral(url);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(host) !== 0) return;
  await new Promise<void>((resolve, reject) => {
    guardedLookupAll(host, { all: true }, (err) => {
      if (err instanceof ForbiddenError) reject(err);
      else resolve();
    });
  });
}
