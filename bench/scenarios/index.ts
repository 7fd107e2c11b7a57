/**
 * The row registry: which rows a run has, in which order, and which baselines each needs.
 * Baselines run in the same invocation as the rows compared with them, just before them, so
 * that ratios hold on a machine whose absolute speed drifts.
 */
import type { RowPlan } from '../lib/types.js';
import { browserFetchUpload, browserPage } from './browser.js';
import { busboyProxy, busboyUpload, hashSink, originDirect, rawFile, rawRelay, rawSink, syncedFile } from './baselines.js';
import { GiB, manyFilesSpec, MiB, oneFileSpec } from './common.js';
import { concurrent } from './concurrent.js';
import { fetchRow } from './fetch.js';
import { fetchStore, fetchStoreBroken, fetchThrottled } from './fetch-resume.js';
import { proxyRow } from './proxy.js';
import { MANY_FILE_BYTES, MANY_FILES, uploadMany } from './upload-many.js';
import { uploadMultipart } from './upload-multipart.js';
import { uploadMultipartHttps } from './upload-https.js';
import { uploadRaw } from './upload-raw.js';
import { untuned } from './untuned.js';
import { CHUNKED_MAX_BYTES, resumableChunks, resumableCut, resumableOnePatch } from './resumable.js';

/** proxy-slow: long enough to show a flat line, short enough to finish in ~8 s. */
export const SLOW_RATE = 32 * MiB;
export const SLOW_MAX_BYTES = 256 * MiB;

/** The resumable-fetch rows move 4 GiB (less in a smoke run: 4 × --size). */
export const FETCH_RESUME_MAX_BYTES = 4 * GiB;

/** The size at which the memory-flatness reference rows run when --size is larger. */
export const REFERENCE_SIZE = GiB;

/** Every row a run may have, in run order, each with the rows it cannot be read without. */
function allRows(size: number): { plan: RowPlan; needs: readonly string[] }[] {
  const withRef = size > REFERENCE_SIZE;
  const refName = (n: string): string => `${n}@1GiB`;
  const slowBytes = Math.min(size, SLOW_MAX_BYTES);
  const rows: { plan: RowPlan; needs: readonly string[] }[] = [
    { plan: rawSink(oneFileSpec(size)), needs: [] },
    { plan: hashSink(oneFileSpec(size)), needs: ['raw-sink'] },
    { plan: rawFile(oneFileSpec(size)), needs: ['raw-sink'] },
    { plan: syncedFile(oneFileSpec(size)), needs: ['raw-sink'] },
    { plan: busboyUpload('busboy-upload', oneFileSpec(size), 'busboy server writing each file to disk'), needs: ['raw-file'] },
    { plan: uploadMultipart('upload-multipart', oneFileSpec(size)), needs: ['raw-sink', 'hash-sink', 'raw-file', 'synced-file', 'busboy-upload'] },
    { plan: uploadMultipart('upload-multipart-nofsync', oneFileSpec(size), { FSYNC: 'false' }), needs: ['raw-sink', 'raw-file', 'busboy-upload'] },
    { plan: uploadMultipart('upload-multipart-pagecache', oneFileSpec(size), { DIRECT_IO: 'false' }), needs: ['raw-sink', 'raw-file', 'busboy-upload'] },
    { plan: untuned(uploadMultipart('upload-multipart', oneFileSpec(size))), needs: ['upload-multipart'] },
    { plan: uploadMultipartHttps('upload-multipart-https', oneFileSpec(size)), needs: ['upload-multipart'] },
  ];
  if (withRef) rows.push({ plan: uploadMultipart(refName('upload-multipart'), oneFileSpec(REFERENCE_SIZE)), needs: [] });
  rows.push(
    { plan: uploadRaw(size), needs: ['raw-sink', 'hash-sink', 'raw-file', 'synced-file'] },
    {
      plan: busboyUpload('busboy-upload-many', manyFilesSpec(MANY_FILES, MANY_FILE_BYTES), `busboy server, ${MANY_FILES} files in one request`),
      needs: [],
    },
    { plan: uploadMany('upload-many'), needs: ['raw-sink', 'busboy-upload-many'] },
    { plan: uploadMany('upload-many-nofsync', false), needs: ['raw-sink', 'busboy-upload-many'] },
    { plan: originDirect(size), needs: [] },
    { plan: rawRelay(size), needs: ['origin-direct'] },
    { plan: fetchRow('fetch', size), needs: ['raw-sink', 'origin-direct', 'raw-relay'] },
  );
  if (withRef) rows.push({ plan: fetchRow(refName('fetch'), REFERENCE_SIZE), needs: [] });
  const resumeBytes = Math.min(FETCH_RESUME_MAX_BYTES, 4 * size);
  rows.push(
    { plan: fetchStore(resumeBytes), needs: [] },
    { plan: fetchStoreBroken(resumeBytes), needs: ['fetch-store'] },
    { plan: fetchThrottled(resumeBytes, 1), needs: [] },
    { plan: fetchThrottled(resumeBytes, 4), needs: ['fetch-50MBps-c1'] },
    { plan: fetchThrottled(resumeBytes, 8), needs: ['fetch-50MBps-c1'] },
  );
  rows.push(
    { plan: busboyProxy('busboy-proxy', oneFileSpec(size), 0, 'busboy parser + hand-built outbound body over node:http'), needs: [] },
    { plan: proxyRow('proxy', oneFileSpec(size), 0), needs: ['raw-sink', 'busboy-proxy'] },
    { plan: untuned(proxyRow('proxy', oneFileSpec(size), 0)), needs: ['proxy'] },
  );
  if (withRef) rows.push({ plan: proxyRow(refName('proxy'), oneFileSpec(REFERENCE_SIZE), 0), needs: [] });
  rows.push(
    {
      plan: busboyProxy('busboy-proxy-slow', oneFileSpec(slowBytes), SLOW_RATE, 'busboy proxy, destination reading at 32 MiB/s'),
      needs: [],
    },
    { plan: proxyRow('proxy-slow', oneFileSpec(slowBytes), SLOW_RATE), needs: ['raw-sink', 'busboy-proxy-slow'] },
    { plan: concurrent(size), needs: ['raw-sink', 'upload-multipart'] },
    // Resumable uploads (tus): one PATCH against POST /upload of the same bytes, cut 5 times,
    // and in 1 MiB PATCHes (at most 1 GiB, against one PATCH of the same size).
    { plan: resumableOnePatch(size), needs: ['raw-sink', 'upload-raw'] },
    { plan: resumableCut(size), needs: ['resumable-one-patch'] },
    { plan: browserFetchUpload(size), needs: [] },
    { plan: browserPage(size), needs: ['browser-fetch-upload'] },
  );
  const chunkedBytes = Math.min(size, CHUNKED_MAX_BYTES);
  if (chunkedBytes < size) rows.push({ plan: resumableOnePatch(chunkedBytes, refName('resumable-one-patch')), needs: [] });
  rows.push({
    plan: resumableChunks(chunkedBytes, chunkedBytes < size ? refName('resumable-one-patch') : 'resumable-one-patch'),
    needs: [chunkedBytes < size ? refName('resumable-one-patch') : 'resumable-one-patch'],
  });
  return rows;
}

/**
 * The rows for `--only` (null: all), with what they need; a scenario also brings its
 * `@1GiB` reference row when the size is larger (the 10 GiB vs 1 GiB memory check).
 */
export function planRows(size: number, only: readonly string[] | null): RowPlan[] {
  const rows = allRows(size);
  const wanted = new Set<string>();
  const add = (name: string): void => {
    if (wanted.has(name)) return;
    const row = rows.find((r) => r.plan.name === name);
    if (row === undefined) return;
    wanted.add(name);
    for (const need of row.needs) add(need);
    add(`${name}@1GiB`);
  };
  for (const r of rows) if (only === null || only.includes(r.plan.name)) add(r.plan.name);
  return rows.filter((r) => wanted.has(r.plan.name)).map((r) => r.plan);
}

export function knownNames(size: number): string[] {
  return allRows(size).map((r) => r.plan.name);
}
