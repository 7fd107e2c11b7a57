/**
 * The framing of the generated multipart bodies (RFC 7578), kept apart from the generator so
 * that the runner can compute the exact body length without producing the body.
 */
import { randomBytes } from 'node:crypto';
import { BLOCK_BYTES, type BlockSource } from './pattern.js';

export interface FieldSpec {
  readonly name: string;
  readonly value: string;
}

/** What one generated request body holds. `kind: 'raw'` ignores everything but fileBytes. */
export interface BodySpec {
  readonly kind: 'raw' | 'multipart';
  /** Number of file parts (multipart only). */
  readonly files: number;
  /** Bytes of each file (for `raw`, of the whole body). */
  readonly fileBytes: number;
  /** Fields sent before the first file. */
  readonly fieldsBefore: readonly FieldSpec[];
  /** Fields sent after the last file. */
  readonly fieldsAfter: readonly FieldSpec[];
  readonly boundary: string;
}

/** A boundary that random file bytes will not contain by chance (2^-192 per position). */
export function makeBoundary(): string {
  return `----sluice-bench-${randomBytes(24).toString('hex')}`;
}

export function contentTypeOf(spec: BodySpec): string {
  return spec.kind === 'raw' ? 'application/octet-stream' : `multipart/form-data; boundary=${spec.boundary}`;
}

export function fieldPart(boundary: string, field: FieldSpec): string {
  return `--${boundary}\r\nContent-Disposition: form-data; name="${field.name}"\r\n\r\n${field.value}\r\n`;
}

export function fileHead(boundary: string, index: number): string {
  return (
    `--${boundary}\r\nContent-Disposition: form-data; name="file${index}"; filename="blob-${index}.bin"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n'
  );
}

/** Follows every file's data: the CRLF that belongs to the next delimiter. */
export const FILE_TAIL = '\r\n';

export function closeDelimiter(boundary: string): string {
  return `--${boundary}--\r\n`;
}

/** Exact number of bytes the generator writes for `spec`. */
export function bodyLength(spec: BodySpec): number {
  if (spec.kind === 'raw') return spec.fileBytes;
  let n = 0;
  for (const f of spec.fieldsBefore) n += Buffer.byteLength(fieldPart(spec.boundary, f));
  for (let i = 0; i < spec.files; i += 1) n += Buffer.byteLength(fileHead(spec.boundary, i)) + spec.fileBytes + FILE_TAIL.length;
  for (const f of spec.fieldsAfter) n += Buffer.byteLength(fieldPart(spec.boundary, f));
  return n + Buffer.byteLength(closeDelimiter(spec.boundary));
}

/**
 * The body as a sequence of buffers: framing as small fresh buffers, file data as blocks from
 * `source` (so their lifetime rules are the source's). Lazy: one block exists at a time.
 */
export function* bodyPieces(spec: BodySpec, source: BlockSource): Generator<Buffer, void, undefined> {
  if (spec.kind === 'raw') {
    yield* fileBytes(spec.fileBytes, source);
    return;
  }
  for (const f of spec.fieldsBefore) yield Buffer.from(fieldPart(spec.boundary, f));
  for (let i = 0; i < spec.files; i += 1) {
    yield Buffer.from(fileHead(spec.boundary, i));
    yield* fileBytes(spec.fileBytes, source);
    yield Buffer.from(FILE_TAIL);
  }
  for (const f of spec.fieldsAfter) yield Buffer.from(fieldPart(spec.boundary, f));
  yield Buffer.from(closeDelimiter(spec.boundary));
}

function* fileBytes(bytes: number, source: BlockSource): Generator<Buffer, void, undefined> {
  let left = bytes;
  while (left > 0) {
    const block = source.next(Math.min(left, BLOCK_BYTES));
    left -= block.length;
    yield block;
  }
}

/** Serialises a spec for a generator's command line. */
export function encodeSpec(spec: BodySpec): string {
  return Buffer.from(JSON.stringify(spec)).toString('base64url');
}

export function decodeSpec(text: string): BodySpec {
  const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  if (!isBodySpec(value)) throw new Error('generator: malformed body spec');
  return value;
}

function isBodySpec(v: unknown): v is BodySpec {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    (o.kind === 'raw' || o.kind === 'multipart') &&
    typeof o.files === 'number' &&
    typeof o.fileBytes === 'number' &&
    typeof o.boundary === 'string' &&
    Array.isArray(o.fieldsBefore) &&
    Array.isArray(o.fieldsAfter)
  );
}
