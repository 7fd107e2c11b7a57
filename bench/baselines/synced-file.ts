/**
 * Baseline: the ceiling for the disk when a 201 must mean the bytes are on it. The raw body
 * piped to one file in DATA_DIR through the page cache, then fdatasync'ed before the answer: no
 * hash, no parser, no record. sluice with FSYNC=true cannot answer sooner than this on the same
 * disk, whatever it does on the way (issue 18 measures its uploads against it and hash-sink).
 */
import { randomBytes } from 'node:crypto';
import { close, createWriteStream, fdatasync, open } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { listenFromEnv } from '../lib/listen.js';

const dataDir = process.env.DATA_DIR ?? '';
if (dataDir === '') throw new Error('synced-file: DATA_DIR must be set');
const sync = promisify(fdatasync);

const server = createServer((req, res) => {
  open(join(dataDir, randomBytes(16).toString('hex')), 'wx', (err, fd) => {
    if (err) return void res.destroy();
    // The descriptor stays open after the pipeline so that it can be synced.
    const out = createWriteStream('', { fd, autoClose: false });
    pipeline(req, out)
      .then(() => sync(fd))
      .then(
        () => {
          res.writeHead(201, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ files: [{ size: out.bytesWritten }] }));
        },
        () => res.destroy(),
      )
      .finally(() => close(fd, () => {}));
  });
});
listenFromEnv(server, 'synced-file');
