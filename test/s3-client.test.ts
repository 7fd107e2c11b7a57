/**
 * Unit tests of the S3 client's pieces that a real gateway cannot be made to exercise on demand:
 * the error mapping table, URL styles, the XML reader, and retries/throttling. The retry tests use
 * a tiny 127.0.0.1 HTTP server that answers fixed S3 error documents; everything about real S3
 * behaviour is tested against Ceph RGW in s3-store.test.ts.
 */
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { NotFoundError, SluiceError } from '../lib/errors.js';
import { S3Client } from '../storage/s3/client.js';
import { S3ResponseError, mapS3Response } from '../storage/s3/errors.js';
import { S3Transport } from '../storage/s3/transport.js';
import { decodeXml, escapeXml, xmlBlocks, xmlText } from '../storage/s3/xml.js';

describe('mapS3Response: one S3 answer → one SluiceError', () => {
  const cases: ReadonlyArray<{ what: string; status: number; code: string; retryAfter?: string; http: number; sluice: string; header?: string }> = [
    { what: '503 SlowDown with Retry-After', status: 503, code: 'SlowDown', retryAfter: '7', http: 503, sluice: 'S3_THROTTLED', header: '7' },
    { what: '503 SlowDown without Retry-After defaults to 1 s', status: 503, code: 'SlowDown', http: 503, sluice: 'S3_THROTTLED', header: '1' },
    { what: '429 without a body', status: 429, code: 'Http429', http: 503, sluice: 'S3_THROTTLED', header: '1' },
    { what: '400 ThrottlingException', status: 400, code: 'ThrottlingException', http: 503, sluice: 'S3_THROTTLED', header: '1' },
    { what: '403 SignatureDoesNotMatch', status: 403, code: 'SignatureDoesNotMatch', http: 502, sluice: 'S3_AUTH_FAILED' },
    { what: '403 InvalidAccessKeyId', status: 403, code: 'InvalidAccessKeyId', http: 502, sluice: 'S3_AUTH_FAILED' },
    { what: '403 AccessDenied', status: 403, code: 'AccessDenied', http: 502, sluice: 'S3_AUTH_FAILED' },
    { what: '403 from a HEAD (no body)', status: 403, code: 'Http403', http: 502, sluice: 'S3_AUTH_FAILED' },
    { what: '404 NoSuchKey', status: 404, code: 'NoSuchKey', http: 404, sluice: 'NOT_FOUND' },
    { what: '404 NoSuchBucket names the setting', status: 404, code: 'NoSuchBucket', http: 502, sluice: 'S3_NO_SUCH_BUCKET' },
    { what: '500 InternalError', status: 500, code: 'InternalError', http: 502, sluice: 'S3_ERROR' },
    { what: '502 from a proxy in front', status: 502, code: 'Http502', http: 502, sluice: 'S3_ERROR' },
    { what: '400 InvalidArgument (our bug, still the upstream failing us)', status: 400, code: 'InvalidArgument', http: 502, sluice: 'S3_REQUEST_FAILED' },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const err = mapS3Response(new S3ResponseError('PutObject', c.status, c.code, 'msg', 'req-1'), c.retryAfter);
      assert.equal(err.status, c.http);
      assert.equal(err.code, c.sluice);
      assert.equal(err.headers['retry-after'], c.header);
      if (c.sluice === 'NOT_FOUND') assert.ok(err instanceof NotFoundError);
    });
  }
  test('auth failures name the settings to check', () => {
    const err = mapS3Response(new S3ResponseError('UploadPart', 403, 'SignatureDoesNotMatch', '', null), undefined);
    assert.match(err.message, /S3_ACCESS_KEY, S3_SECRET_KEY/);
    assert.match(err.message, /UploadPart: SignatureDoesNotMatch/);
  });
});

describe('URL styles', () => {
  const base = { region: 'us-east-1', bucket: 'my-bucket', accessKey: 'AK', secretKey: 'SK' };
  test('path style: /bucket/key on the endpoint host, port kept in Host', () => {
    const t = new S3Transport({ ...base, endpoint: new URL('http://127.0.0.1:7480'), pathStyle: true });
    assert.deepEqual(t.target('pre fix/a+b'), { hostname: '127.0.0.1', host: '127.0.0.1:7480', path: '/my-bucket/pre%20fix/a%2Bb' });
    assert.deepEqual(t.target(undefined, [['list-type', '2'], ['prefix', 'a/b']]), {
      hostname: '127.0.0.1',
      host: '127.0.0.1:7480',
      path: '/my-bucket?list-type=2&prefix=a%2Fb',
    });
    t.close();
  });
  test('virtual-host style: bucket.host/key, default port left out', () => {
    const t = new S3Transport({ ...base, endpoint: new URL('https://s3.eu-west-1.amazonaws.com'), pathStyle: false });
    assert.deepEqual(t.target('x/y.json', [['uploads', '']]), {
      hostname: 'my-bucket.s3.eu-west-1.amazonaws.com',
      host: 'my-bucket.s3.eu-west-1.amazonaws.com',
      path: '/x/y.json?uploads=',
    });
    t.close();
  });
  test('an endpoint with a base path keeps it; IPv6 literals lose their brackets for connect only', () => {
    const t = new S3Transport({ ...base, endpoint: new URL('http://[::1]:9000/s3/'), pathStyle: true });
    assert.deepEqual(t.target('k'), { hostname: '::1', host: '[::1]:9000', path: '/s3/my-bucket/k' });
    t.close();
  });
});

describe('xml', () => {
  test('reads text, blocks and entities; escapes for requests', () => {
    const xml = '<R><Contents><Key>a&amp;b&lt;&#x41;&#66;</Key><Size>3</Size></Contents><Contents><Key>c</Key></Contents><KeyMarker/><IsTruncated>false</IsTruncated></R>';
    assert.deepEqual(
      xmlBlocks(xml, 'Contents').map((b) => xmlText(b, 'Key')),
      ['a&b<AB', 'c'],
    );
    assert.equal(xmlText(xml, 'KeyMarker'), '');
    assert.equal(xmlText(xml, 'Missing'), null);
    assert.equal(xmlText(xml, 'IsTruncated'), 'false');
    assert.equal(escapeXml('"etag"&<>\''), '&quot;etag&quot;&amp;&lt;&gt;&apos;');
    assert.equal(decodeXml(escapeXml('"x"')), '"x"');
  });
});

describe('retries and throttling (stand-in server answering fixed S3 documents)', () => {
  let server: Server;
  let endpoint: URL;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {};
  const seen: Array<{ method: string; url: string; sha: string | undefined; auth: string }> = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', sha: req.headers['x-amz-content-sha256'] as string | undefined, auth: req.headers.authorization ?? '' });
      req.resume();
      req.on('end', () => handler(req, res));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    endpoint = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(() => server.close());

  const secret = 'stand-in-secret-never-sent';
  const client = (): S3Client => new S3Client({ endpoint, region: 'us-east-1', bucket: 'b', accessKey: 'AK', secretKey: secret, pathStyle: true });
  const slowDown = (res: ServerResponse, retryAfter?: string): void => {
    res.writeHead(503, { 'content-type': 'application/xml', ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }) });
    res.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
  };

  test('a throttled PutObject is retried, then succeeds', async () => {
    seen.length = 0;
    let calls = 0;
    handler = (_req, res) => (++calls < 3 ? slowDown(res) : res.end());
    const c = client();
    await c.putObject('k', Buffer.from('hello'));
    c.close();
    assert.equal(calls, 3);
    for (const s of seen) {
      assert.equal(s.sha, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'x-amz-content-sha256 on every attempt');
      assert.match(s.auth, /^AWS4-HMAC-SHA256 Credential=AK\/\d{8}\/us-east-1\/s3\/aws4_request,SignedHeaders=content-length;host|^AWS4-HMAC-SHA256 Credential=AK\/\d{8}\/us-east-1\/s3\/aws4_request,SignedHeaders=host;/);
      assert.doesNotMatch(s.auth, new RegExp(secret));
    }
  });

  test('still throttled after 3 attempts: 503 S3_THROTTLED with the server’s Retry-After', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls += 1;
      slowDown(res, '7');
    };
    const c = client();
    const err = await c.headObject('k').then(() => null, (e: unknown) => e);
    c.close();
    assert.equal(calls, 3);
    assert.ok(err instanceof SluiceError);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'S3_THROTTLED');
    assert.equal(err.headers['retry-after'], '7');
  });

  test('CompleteMultipartUpload is never blindly retried, and a 200 carrying <Error> is a failure', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls += 1;
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>');
    };
    const c = client();
    const err = await c.completeMultipartUpload('k', 'up/1', [{ partNumber: 1, etag: '"abc"' }]).then(() => null, (e: unknown) => e);
    assert.equal(calls, 1);
    assert.ok(err instanceof SluiceError);
    assert.equal(err.status, 502);
    assert.equal(err.code, 'S3_ERROR');

    calls = 0;
    handler = (_req, res) => {
      calls += 1;
      slowDown(res);
    };
    const err2 = await c.completeMultipartUpload('k', 'up/1', [{ partNumber: 1, etag: '"abc"' }]).then(() => null, (e: unknown) => e);
    c.close();
    assert.equal(calls, 1, 'not retried');
    assert.equal((err2 as SluiceError).code, 'S3_THROTTLED');
    assert.match(seen.at(-1)?.url ?? '', /^\/b\/k\?uploadId=up%2F1$/);
  });

  test('a kept-alive socket the server dropped is retried on a fresh one, even for CompleteMultipartUpload', async () => {
    const used = new WeakSet<object>();
    let processed = 0;
    handler = (req, res) => {
      // Like a server whose keep-alive timeout just expired: the second request on a socket is cut.
      if (used.has(req.socket)) return void req.socket.destroy();
      used.add(req.socket);
      processed += 1;
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<CompleteMultipartUploadResult><ETag></ETag></CompleteMultipartUploadResult>');
    };
    const c = client();
    await c.completeMultipartUpload('k', 'u1', [{ partNumber: 1, etag: '"a"' }]);
    await c.completeMultipartUpload('k', 'u2', [{ partNumber: 1, etag: '"a"' }]); // first try rides the old socket
    c.close();
    assert.equal(processed, 2);
  });

  test('an abort signal stops a request and its retries at once, unmapped', async () => {
    handler = () => {}; // never answers
    const c = client();
    const ac = new AbortController();
    const pending = c.uploadPart('k', 'u', 1, Buffer.alloc(10), { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(pending, { name: 'AbortError' });
    c.close();
  });
});
