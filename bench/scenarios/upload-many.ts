/** POST /upload with 2,000 small files in one request: per-part cost, not bytes, dominates. */
import type { BodySpec } from '../lib/multipart-body.js';
import type { RowPlan } from '../lib/types.js';
import { bodyLength, expectStored, manyFilesSpec, uploadTo } from './common.js';

export const MANY_FILES = 2000;
export const MANY_FILE_BYTES = 64 * 1024;

/** `fsync: false`: FSYNC=false, like for like with the busboy baseline (see upload-multipart.ts). */
export function uploadMany(name: string, fsync = true, spec: BodySpec = manyFilesSpec(MANY_FILES, MANY_FILE_BYTES)): RowPlan {
  return {
    name,
    group: 'sluice',
    description: `POST /upload, ${spec.files} files of ${spec.fileBytes / 1024} KiB in one request${fsync ? '' : ', FSYNC=false'}`,
    bytes: bodyLength(spec),
    ratioTo: ['busboy-upload-many'],
    helpers: [],
    // MAX_FILES defaults to 100 per request.
    server: { kind: 'sluice', env: () => ({ MAX_FILES: String(spec.files), ...(fsync ? {} : { FSYNC: 'false' }) }) },
    transfer: uploadTo('/upload', spec),
    validate: (r) => expectStored(r, 201, spec.files, spec.fileBytes),
  };
}
