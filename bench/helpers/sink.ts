/**
 * The destination for the proxy scenarios: reads and discards whatever is POSTed, answering
 * `{"bytes":N}`. With RATE_BYTES_PER_SEC set it reads no faster than that (a token bucket over
 * pause/resume), which is the slow destination of `proxy-slow`: the kernel buffers fill, and
 * the proxy in front of it must then stop reading its client instead of queueing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { envNumber, listenFromEnv } from '../lib/listen.js';

const rate = envNumber('RATE_BYTES_PER_SEC', 0);

function drain(req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (rate === 0) return;
    const allowed = ((performance.now() - started) / 1000) * rate;
    if (bytes > allowed) {
      req.pause();
      setTimeout(() => req.resume(), ((bytes - allowed) / rate) * 1000);
    }
  });
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ bytes, contentType: req.headers['content-type'] ?? null }));
  });
  req.on('error', () => res.destroy());
}

listenFromEnv(createServer(drain), 'sink');
