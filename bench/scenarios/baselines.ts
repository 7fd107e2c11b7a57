/**
 * The baseline rows: the same client and the same bodies as the sluice rows, against servers
 * that do the least (raw-sink, raw-file) or the usual (busboy) thing. See baselines/*.ts.
 */
import { download } from '../lib/clients.js';
import type { BodySpec } from '../lib/multipart-body.js';
import type { RowPlan } from '../lib/types.js';
import { bodyLength, expectDelivered, expectDownloaded, expectStored, uploadTo } from './common.js';

/** raw-sink, hash-sink, raw-file and synced-file store (or count) the whole body as one file. */
function rawBaseline(name: 'raw-sink' | 'hash-sink' | 'raw-file' | 'synced-file', spec: BodySpec, description: string): RowPlan {
  const bytes = bodyLength(spec);
  return {
    name,
    group: 'baseline',
    description,
    bytes,
    ratioTo: name === 'raw-sink' ? [] : ['raw-sink'],
    helpers: [],
    server: { kind: 'baseline', script: `baselines/${name}.js`, env: () => ({}) },
    transfer: uploadTo('/upload', spec),
    validate: (r) => expectStored(r, 201, 1, bytes),
  };
}

export function rawSink(spec: BodySpec): RowPlan {
  return rawBaseline('raw-sink', spec, 'node:http server that discards the body (socket ceiling)');
}

/** The body SHA-256'd and discarded: the least a server that hashes what it stores must do. */
export function hashSink(spec: BodySpec): RowPlan {
  return rawBaseline('hash-sink', spec, 'node:http server that SHA-256s the body and discards it (hash ceiling)');
}

export function rawFile(spec: BodySpec): RowPlan {
  return rawBaseline('raw-file', spec, 'node:http server piping the raw body to a file (disk ceiling)');
}

/** The body written to a file and fdatasync'ed before the 201: the disk's ceiling for a durable answer. */
export function syncedFile(spec: BodySpec): RowPlan {
  return rawBaseline('synced-file', spec, 'node:http server piping the raw body to a file, fdatasync before the 201 (durable disk ceiling)');
}

export function busboyUpload(name: string, spec: BodySpec, description: string): RowPlan {
  return {
    name,
    group: 'baseline',
    description,
    bytes: bodyLength(spec),
    ratioTo: ['raw-file'],
    helpers: [],
    server: { kind: 'baseline', script: 'baselines/busboy-upload.js', env: () => ({}) },
    transfer: uploadTo('/upload', spec),
    validate: (r) => expectStored(r, 201, spec.files, spec.fileBytes),
  };
}

/** `rate` (bytes/s) > 0 makes the destination read slowly. */
export function busboyProxy(name: string, spec: BodySpec, rate: number, description: string): RowPlan {
  return {
    name,
    group: 'baseline',
    description,
    bytes: bodyLength(spec),
    ratioTo: ['raw-sink'],
    helpers: [{ script: 'helpers/sink.js', env: rate > 0 ? { RATE_BYTES_PER_SEC: String(rate) } : {} }],
    server: { kind: 'baseline', script: 'baselines/busboy-proxy.js', env: ([sink]) => ({ TARGET: `http://127.0.0.1:${sink}/sink` }) },
    transfer: uploadTo('/proxy', spec),
    validate: (r) => expectDelivered(r, spec.fileBytes),
  };
}

/** The origin measured on its own: curl downloading straight from it (the ceiling for /fetch). */
export function originDirect(bytes: number): RowPlan {
  return {
    name: 'origin-direct',
    group: 'baseline',
    description: 'curl downloading straight from the local origin (fetch ceiling)',
    bytes,
    ratioTo: [],
    helpers: [],
    server: { kind: 'baseline', script: 'helpers/origin.js', env: () => ({}) },
    transfer: (a) => download(`http://127.0.0.1:${a.port}/blob?bytes=${bytes}`, a.ctx.timeoutFor(bytes)),
    validate: (r) => expectDownloaded(r, bytes),
  };
}

/** A bare node:http relay in front of the same origin: the like-for-like ceiling for /fetch. */
export function rawRelay(bytes: number): RowPlan {
  return {
    name: 'raw-relay',
    group: 'baseline',
    description: 'node:http GET piped to the client, in front of the same origin',
    bytes,
    ratioTo: ['origin-direct'],
    helpers: [{ script: 'helpers/origin.js', env: {} }],
    server: { kind: 'baseline', script: 'baselines/raw-relay.js', env: () => ({}) },
    transfer: (a) => {
      const origin = `http://127.0.0.1:${a.helperPorts[0]}/blob?bytes=${bytes}`;
      return download(`http://127.0.0.1:${a.port}/fetch?url=${encodeURIComponent(origin)}`, a.ctx.timeoutFor(bytes));
    },
    validate: (r) => expectDownloaded(r, bytes),
  };
}
