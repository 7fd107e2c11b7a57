/**
 * Baseline for the proxy: what one would write without sluice. busboy parses the upload, the
 * outbound multipart body is built by hand on a node:http request (chunked) to $TARGET, file
 * data forwarded with pause/resume backpressure, and the destination's answer piped back.
 */
import busboy from 'busboy';
import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { listenFromEnv } from '../lib/listen.js';

const target = new URL(process.env.TARGET ?? '');

function quote(text: string): string {
  return text.replaceAll('"', '%22').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const boundary = `----busboy-proxy-${randomBytes(16).toString('hex')}`;
  const out = request(target, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
  const fail = (): void => {
    out.destroy();
    res.destroy();
  };
  out.on('error', fail);
  out.on('response', (answer) => {
    res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'application/octet-stream' });
    pipeline(answer, res, () => {});
  });

  const bb = busboy({ headers: req.headers, limits: { files: Infinity, fields: Infinity, parts: Infinity } });
  bb.on('field', (name, value) => {
    out.write(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`);
  });
  bb.on('file', (name, stream, info) => {
    out.write(
      `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"; filename="${quote(info.filename ?? '')}"\r\n` +
        `Content-Type: ${info.mimeType}\r\n\r\n`,
    );
    stream.on('data', (chunk: Buffer) => {
      if (!out.write(chunk)) {
        stream.pause();
        out.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => out.write('\r\n'));
  });
  bb.on('close', () => out.end(`--${boundary}--\r\n`));
  pipeline(req, bb, (err) => {
    if (err) fail();
  });
}

listenFromEnv(createServer(handle), 'busboy-proxy');
