/** POST /upload, multipart: one large file plus fields, the core job of sluice. */
import type { BodySpec } from '../lib/multipart-body.js';
import type { RowPlan } from '../lib/types.js';
import { bodyLength, expectStored, uploadTo } from './common.js';

/**
 * `settings`: the environment of this row's sluice. The default row is sluice as shipped
 * (crash-safe, O_DIRECT). `FSYNC=false` is the like-for-like comparison (the baselines never
 * fdatasync); `DIRECT_IO=false` writes through the page cache, as the baselines do.
 */
export function uploadMultipart(name: string, spec: BodySpec, settings: Readonly<Record<string, string>> = {}): RowPlan {
  const note = Object.entries(settings)
    .map(([k, v]) => `, ${k}=${v}`)
    .join('');
  return {
    name,
    group: 'sluice',
    description: `POST /upload, multipart: one large file plus three fields${note}`,
    bytes: bodyLength(spec),
    ratioTo: ['hash-sink', 'synced-file', 'raw-file', 'busboy-upload'],
    helpers: [],
    server: { kind: 'sluice', env: (): Record<string, string> => ({ ...settings }) },
    transfer: uploadTo('/upload', spec),
    validate: (r) => expectStored(r, 201, 1, spec.fileBytes),
  };
}
