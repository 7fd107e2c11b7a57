/**
 * Baseline: the ceiling for the socket. A bare node:http server that reads the body and throws
 * it away; nothing sluice does can beat it, so every scenario's memory is read against its peak.
 */
import { createServer } from 'node:http';
import { listenFromEnv } from '../lib/listen.js';

const server = createServer((req, res) => {
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
  });
  req.on('end', () => {
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ files: [{ size }] }));
  });
  req.on('error', () => res.destroy());
});
listenFromEnv(server, 'raw-sink');
