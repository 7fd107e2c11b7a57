/**
 * Baseline for /fetch: the least a relay does. `GET /fetch?url=` → node:http GET of that URL,
 * its body piped to the client with stream.pipeline; no address checks, no hold-back of the
 * last chunk. What sluice's fetch costs beyond this is the price of its safety checks.
 */
import { createServer, get } from 'node:http';
import { pipeline } from 'node:stream';
import { listenFromEnv } from '../lib/listen.js';

const server = createServer((req, res) => {
  const target = new URL(req.url ?? '/', 'http://relay').searchParams.get('url');
  if (target === null) {
    res.writeHead(400).end();
    return;
  }
  const upstream = get(target, { agent: false }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, {
      'content-type': answer.headers['content-type'] ?? 'application/octet-stream',
      ...(answer.headers['content-length'] === undefined ? {} : { 'content-length': answer.headers['content-length'] }),
    });
    pipeline(answer, res, () => {});
  });
  upstream.on('error', () => res.destroy());
  res.on('close', () => upstream.destroy());
});
listenFromEnv(server, 'raw-relay');
