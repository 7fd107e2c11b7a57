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
 * - 8: drafts -09, -10, -11;
 * - 9: draft -12 (6 July 2026: `Upload-Complete` in an answer says whether it comes from the
 *   targeted resource; the completed-upload problem type is gone and a completed upload's final
 *   answer may be replayed; a refusal for a limit carries `Upload-Limit`);
 * - 10: draft -13 (6 October 2026) and, as far as could be found, -14 and -15. Their texts could
 *   not be read here (peers that implement -13 name 10); no server-visible change from 9 is
 *   known, so 9 and 10 are answered alike.
 * Versions 3 to 5 (drafts -01 to -03, `Upload-Incomplete`, no `application/partial-upload`) are
 * not implemented: such a request is refused rather than answered in a dialect it did not ask for.
 */
export type InteropVersion = 6 | 7 | 8 | 9 | 10;

/** Newest first. */
export const INTEROP_VERSIONS: readonly InteropVersion[] = [10, 9, 8, 7, 6];

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

/**
 * Draft -12 on (interop 9+): "`Upload-Complete` signals whether the response comes from the
 * initial targeted resource" ("Completeness"), so a refused operation on a completed upload is
 * answered with `?0`; the completed-upload problem type is no longer defined; "The server can
 * choose to replay the final response ... if the request to append to the completed upload is
 * valid" ("Upload Append"); and "When a request is rejected because limits were violated, the
 * response SHOULD include the Upload-Limit header field" ("Limits").
 */
export function speaksDraft12(interop: InteropVersion): boolean {
  return interop >= 9;
}

/** The `Upload-Limit` key for the upload's remaining lifetime: `expires` until draft -05, `max-age` after ("Since -05: Rename expires limit to max-age"). */
export function lifetimeLimitKey(interop: InteropVersion): 'expires' | 'max-age' {
  return interop === 6 ? 'expires' : 'max-age';
}
