/**
 * Baseline: the de-facto standard multipart upload server. busboy parses, each file is piped
 * to its own file in DATA_DIR, fields are collected; the answer lists the sizes, like sluice's.
 * No hashing: this is the plain way most servers are written, so it is the bar to clear.
 */
import busboy from 'busboy';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { listenFromEnv } from '../lib/listen.js';

const dataDir = process.env.DATA_DIR ?? '';
if (dataDir === '') throw new Error('busboy-upload: DATA_DIR must be set');

function handle(req: IncomingMessage, res: ServerResponse): void {
  const files: Promise<{ field: string; size: number }>[] = [];
  const fields: { name: string; value: string }[] = [];
  const bb = busboy({ headers: req.headers, limits: { files: Infinity, fields: Infinity, parts: Infinity } });
  bb.on('file', (field, stream) => {
    const out = createWriteStream(join(dataDir, randomBytes(16).toString('hex')));
    files.push(pipeline(stream, out).then(() => ({ field, size: out.bytesWritten })));
  });
  bb.on('field', (name, value) => fields.push({ name, value }));
  bb.on('close', () => {
    Promise.all(files).then(
      (done) => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ files: done, fields }));
      },
      () => res.destroy(),
    );
  });
  pipeline(req, bb).catch(() => res.destroy());
}

listenFromEnv(createServer(handle), 'busboy-upload');
