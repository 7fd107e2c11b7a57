import type { FileRecord } from '../storage/store.js';

/** One entry of the upload answer: the record without `created`, as issue #2 specifies. */
export interface UploadedFile {
  readonly id: string;
  readonly field: string | null;
  readonly filename: string | null;
  readonly contentType: string;
  readonly size: number;
  readonly sha256: string;
}

export interface UploadAnswer {
  readonly files: readonly UploadedFile[];
  readonly fields: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

/** The `201` body of `POST /upload`, also what a resumable upload answers when it completes. */
export function uploadAnswer(files: readonly FileRecord[], fields: UploadAnswer['fields'] = []): UploadAnswer {
  return {
    files: files.map(({ id, field, filename, contentType, size, sha256 }): UploadedFile => ({ id, field, filename, contentType, size, sha256 })),
    fields,
  };
}
