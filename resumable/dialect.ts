import type { IncomingMessage } from 'node:http';
import { field, parseSfNonNegativeInteger } from './fields.js';

/**
 * Which protocol a request speaks: tus 1.0.0 when it carries `Tus-Resumable`, the IETF draft
 * when it carries `Upload-Draft-Interop-Version` with a version implemented here.
 *
 * Interop versions, each from its own draft text ("Draft Version Identification"):
 * - 6: draft -04 and -05 (tus-js-client 4's `protocol: 'ietf-draft-05'`, URLSession on iOS 18);
 * - 7: drafts -06 to -08 (`expires` limit renamed `max-age`; an append's answer carries
 *   `Upload-Complete`);
 * - 8: drafts -09, -10, -11 and the newest text read (the working group's copy of July 2026,
 *   "The current interop version is 8").
 * Versions 3 to 5 (drafts -01 to -03, `Upload-Incomplete`, no `application/partial-upload`) are
 * not implemented: such a request is refused rather than answered in a dialect it did not ask for.
 */
export type InteropVersion = 6 | 7 | 8;

/** Newest first. */
export const INTEROP_VERSIONS: readonly InteropVersion[] = [8, 7, 6];

export const TUS_VERSION = '1.0.0';

export type Dialect = { readonly kind: 'tus' } | { readonly kind: 'ietf'; readonly interop: InteropVersion };

export const TUS: Dialect = { kind: 'tus' };

/** What the request's protocol headers say, before any rule is applied to them. */
export type DialectClaim =
  | { readonly kind: 'dialect'; readonly dialect: Dialect }
  /** `Upload-Draft-Interop-Version` present but not a version implemented here. */
  | { readonly kind: 'unknown-interop'; readonly value: string }
  /** `Tus-Resumable` present with another version than 1.0.0. */
  | { readonly kind: 'unknown-tus'; readonly value: string }
  /** Neither header. */
  | { readonly kind: 'none' };

export function claimedDialect(req: IncomingMessage): DialectClaim {
  const interop = field(req, 'upload-draft-interop-version');
  if (interop !== undefined) {
    const version = parseSfNonNegativeInteger(interop);
    const known = INTEROP_VERSIONS.find((v) => v === version);
    return known === undefined ? { kind: 'unknown-interop', value: interop } : { kind: 'dialect', dialect: { kind: 'ietf', interop: known } };
  }
  const tus = field(req, 'tus-resumable');
  if (tus !== undefined) return tus === TUS_VERSION ? { kind: 'dialect', dialect: TUS } : { kind: 'unknown-tus', value: tus };
  return { kind: 'none' };
}

/** The `Upload-Limit` key for the upload's remaining lifetime: `expires` until draft -05, `max-age` after ("Since -05: Rename expires limit to max-age"). */
export function lifetimeLimitKey(interop: InteropVersion): 'expires' | 'max-age' {
  return interop === 6 ? 'expires' : 'max-age';
}
