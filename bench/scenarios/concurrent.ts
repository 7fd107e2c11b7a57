/** Many multipart uploads at once: memory per upload and aggregate throughput. */
import type { RowPlan } from '../lib/types.js';
import { bodyLength, expectStored, oneFileSpec, uploadTo } from './common.js';

export const CONCURRENT_UPLOADS = 32;

/**
 * 32 uploads at once of size/4 each (256 MiB each for the default 1 GiB run, capped there, so
 * that a 10 GiB run does not write 80 GiB): the aggregate is compared with one large upload.
 */
export function concurrentBytes(size: number): number {
  return Math.min(256 * (1024 * 1024), Math.floor(size / 4));
}

export function concurrent(size: number): RowPlan {
  const each = concurrentBytes(size);
  const spec = oneFileSpec(each);
  return {
    name: 'concurrent',
    group: 'sluice',
    description: `${CONCURRENT_UPLOADS} multipart uploads of ${(each / 2 ** 20).toFixed(0)} MiB at once (aggregate)`,
    bytes: bodyLength(spec) * CONCURRENT_UPLOADS,
    ratioTo: ['upload-multipart'],
    helpers: [],
    server: { kind: 'sluice', env: () => ({ MAX_CONCURRENT_UPLOADS: String(CONCURRENT_UPLOADS * 2) }) },
    transfer: uploadTo('/upload', spec, CONCURRENT_UPLOADS),
    validate: (r) => expectStored(r, 201, 1, each, CONCURRENT_UPLOADS),
  };
}
