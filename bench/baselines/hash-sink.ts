/**
 * Baseline: the ceiling for a server that hashes what it stores. A bare node:http server that
 * reads the body, SHA-256s every byte of it (framing included) and throws it away: no parser,
 * no disk. sluice hashes every byte it stores, so this is the fastest it could ever take an
 * upload on the machine (issue 18 sets its upload targets against this row).
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { listenFromEnv } from '../lib/listen.js';

const server = createServer((req, res) => {
  const hash = createHash('sha256');
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    hash.update(chunk);
  });
  req.on('end', () => {
    const sha256 = hash.digest('hex');
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ files: [{ size, sha256 }] }));
  });
  req.on('error', () => res.destroy());
});
listenFromEnv(server, 'hash-sink');
