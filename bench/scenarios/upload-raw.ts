/** POST /upload with a raw application/octet-stream body: no parser in the way. */
import type { RowPlan } from '../lib/types.js';
import { expectStored, rawSpec, uploadTo } from './common.js';

export function uploadRaw(bytes: number): RowPlan {
  const spec = rawSpec(bytes);
  return {
    name: 'upload-raw',
    group: 'sluice',
    description: 'POST /upload, raw application/octet-stream body',
    bytes,
    ratioTo: ['hash-sink', 'synced-file', 'raw-file'],
    helpers: [],
    server: { kind: 'sluice', env: () => ({}) },
    transfer: uploadTo('/upload', spec),
    validate: (r) => expectStored(r, 201, 1, bytes),
  };
}
