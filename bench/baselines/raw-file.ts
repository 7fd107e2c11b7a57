/**
 * Baseline: the ceiling for the disk. The raw body piped to one file in DATA_DIR, the least an
 * upload server can do; the throughput target for multipart uploads is set against it.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { listenFromEnv } from '../lib/listen.js';

const dataDir = process.env.DATA_DIR ?? '';
if (dataDir === '') throw new Error('raw-file: DATA_DIR must be set');

const server = createServer((req, res) => {
  const out = createWriteStream(join(dataDir, randomBytes(16).toString('hex')));
  pipeline(req, out).then(
    () => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ files: [{ size: out.bytesWritten }] }));
    },
    () => res.destroy(),
  );
});
listenFromEnv(server, 'raw-file');
