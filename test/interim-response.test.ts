/**
 * The draft's `104 Upload Resumption Supported` as resumable/interim.ts writes it, read by real
 * clients of interim responses (node:http's 'information' event; raw bytes off the socket): in
 * order after `100 Continue`, queued behind an earlier answer on a keep-alive connection
 * (pipelining), never to an HTTP/1.0 client, and never once the final answer has begun.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { writeInterimResponse } from '../resumable/interim.js';
import { routeRequest } from '../lib/routes.js';

const HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Upload-Draft-Interop-Version', '8'],
  ['Location', '/uploads/abc'],
  ['Upload-Limit', 'max-age=3600'],
];

describe('104 Upload Resumption Supported on the wire', () => {
  let server: Server;
  let port = 0;
  const results: boolean[] = [];
  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '/';
      if (path === '/slow') {
        // An earlier answer still being written when the next request's 104 is written.
        res.writeHead(200, { 'content-length': '4' });
        res.write('sl');
        setTimeout(() => res.end('ow'), 150);
        return;
      }
      results.push(writeInterimResponse(res, 104, 'Upload Resumption Supported', HEADERS));
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { 'content-length': '2' });
        res.end('ok');
        // Once the final answer has begun, an interim one is refused.
        results.push(writeInterimResponse(res, 104, 'Upload Resumption Supported', HEADERS));
      });
    });
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      res.writeContinue();
      server.emit('request', req, res);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  test("node:http's 'information' event sees the 104 with its headers, then the final answer", async () => {
    results.length = 0;
    const interim: Array<{ status: number; headers: Record<string, unknown> }> = [];
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/create', agent: false }, resolve);
      req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }));
      req.on('error', reject);
      req.end('hello');
    });
    res.resume();
    await once(res, 'end');
    assert.equal(res.statusCode, 201);
    assert.equal(interim.length, 1);
    assert.equal(interim[0]?.status, 104);
    assert.equal(interim[0]?.headers.location, '/uploads/abc');
    assert.equal(interim[0]?.headers['upload-draft-interop-version'], '8');
    assert.equal(interim[0]?.headers['upload-limit'], 'max-age=3600');
    assert.deepEqual(results, [true, false]);
  });

  test('Expect: 100-continue: 100 first, then 104, then the final answer', async () => {
    const interim: number[] = [];
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/create', agent: false, headers: { expect: '100-continue', 'content-length': '5' } }, resolve);
      req.on('information', (info) => interim.push(info.statusCode));
      req.on('continue', () => req.end('hello'));
      req.on('error', reject);
    });
    res.resume();
    await once(res, 'end');
    assert.deepEqual(interim, [100, 104]);
    assert.equal(res.statusCode, 201);
  });

  test('pipelined on one keep-alive connection: the 104 waits until the earlier answer is complete', async () => {
    const bytes = await exchange(
      'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n' + 'POST /create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
    );
    const text = bytes.toString('latin1');
    const first = text.indexOf('HTTP/1.1 200 OK');
    const slowEnd = text.indexOf('slow');
    const interim = text.indexOf('HTTP/1.1 104 Upload Resumption Supported');
    const final = text.indexOf('HTTP/1.1 201');
    assert.ok(first === 0 && slowEnd > first, text);
    assert.ok(interim > slowEnd, `104 must follow the complete first answer:\n${text}`);
    assert.ok(final > interim, text);
    assert.match(text.slice(interim), /^HTTP\/1\.1 104 Upload Resumption Supported\r\nUpload-Draft-Interop-Version: 8\r\nLocation: \/uploads\/abc\r\nUpload-Limit: max-age=3600\r\n\r\nHTTP\/1\.1 201/);
  });

  test('an HTTP/1.0 client gets no 1xx (RFC 9110 15.2)', async () => {
    results.length = 0;
    const text = (await exchange('POST /create HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi')).toString('latin1');
    assert.doesNotMatch(text, /104/);
    assert.match(text, /^HTTP\/1\.1 201/);
    assert.equal(results[0], false);
  });

  function exchange(text: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => socket.write(text));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
    });
  }
});

describe('X-HTTP-Method-Override (tus core)', () => {
  test('on the resumable routes it names the method', () => {
    const patch = routeRequest('POST', '/uploads/abc', 'PATCH');
    assert.ok(patch.kind === 'ok');
    assert.equal(patch.method, 'PATCH');
    assert.equal(patch.route.upload, true, 'an overridden PATCH counts as an upload');
    const del = routeRequest('POST', '/uploads/abc', ' delete ');
    assert.ok(del.kind === 'ok' && del.method === 'DELETE');
  });
  test('elsewhere it is ignored, and a value that is no method token is ignored', () => {
    const files = routeRequest('POST', '/files/abc', 'DELETE');
    assert.equal(files.kind, 'method');
    const odd = routeRequest('HEAD', '/uploads/abc', 'PATCH\r\nX: y');
    assert.ok(odd.kind === 'ok' && odd.method === 'HEAD');
  });
});
