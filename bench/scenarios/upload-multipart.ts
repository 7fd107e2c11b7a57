/** POST /upload, multipart: one large file plus fields, the core job of sluice. */
import type { BodySpec } from '../lib/multipart-body.js';
import type { RowPlan } from '../lib/types.js';
import { bodyLength, expectStored, uploadTo } from './common.js';

/**
 * `fsync: false` runs sluice with FSYNC=false: the baselines never fdatasync, so that row is
 * the like-for-like comparison, and the default row is sluice as shipped (crash-safe).
 */
export function uploadMultipart(name: string, spec: BodySpec, fsync = true): RowPlan {
  return {
    name,
    group: 'sluice',
    description: `POST /upload, multipart: one large file plus three fields${fsync ? '' : ', FSYNC=false'}`,
    bytes: bodyLength(spec),
    ratioTo: ['raw-file', 'busboy-upload'],
    helpers: [],
    server: { kind: 'sluice', env: (): Record<string, string> => (fsync ? {} : { FSYNC: 'false' }) },
    transfer: uploadTo('/upload', spec),
    validate: (r) => expectStored(r, 201, 1, spec.fileBytes),
  };
}
