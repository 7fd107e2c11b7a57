/**
 * What the parser yields and the encoder takes: a flat stream of small events instead of a
 * stream object per part, so that thousands of tiny parts stay cheap and backpressure is the
 * ordinary backpressure of one object-mode stream. The parser yields them in arrays
 * (`MultipartEvent[]`, one per input chunk).
 */

/** The parsed header block of one body part. */
export interface PartInfo {
  /** `name` parameter of `Content-Disposition: form-data`. */
  readonly name: string;
  /**
   * The filename (last path segment, `filename*` preferred), `''` for an empty file input,
   * or `null` when the part has no filename parameter at all (a plain field).
   */
  readonly filename: string | null;
  /** The part's `Content-Type`, or `null` when it sent none. */
  readonly contentType: string | null;
  /** Every header of the part, names lower-cased. A null-prototype record. */
  readonly headers: Readonly<Record<string, string>>;
}

export type MultipartEvent =
  | { readonly type: 'part'; readonly part: PartInfo }
  | { readonly type: 'data'; readonly data: Buffer }
  | { readonly type: 'part-end' };
