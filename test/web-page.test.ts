/**
 * The web page's serving handler over real sockets (no browser: web-browser.test.ts drives the
 * page itself): what `GET /` and `/ui/*` send, their security headers, types, ETag and 304,
 * `UI=false`, the page being public while the API it calls keeps AUTH_TOKEN, and paths that
 * try to climb out of dist/web.
 */
import { strict as assert } from 'node:assert';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { startServer, type TestServer } from './helpers/server.js';
import { rawRequest } from './helpers/http.js';

const SECURITY = {
  'content-security-policy': "default-src 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

describe('web page: GET / and its assets', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ AUTH_TOKEN: 'page-secret' });
  });
  after(() => server.close());

  test('GET / is the built page (public: no token needed), with the security headers', async () => {
    const res = await rawRequest(server.url, '/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    for (const [k, v] of Object.entries(SECURITY)) assert.equal(res.headers[k], v, k);
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.match(String(res.headers.etag), /^"[A-Za-z0-9_-]{22}"$/);
    assert.ok(res.body.equals(await readFile('dist/web/index.html')), 'the body is dist/web/index.html');
    assert.equal(res.headers['content-length'], String(res.body.length));
  });

  test('the page has no inline script or style and loads nothing from another origin', async () => {
    const html = (await rawRequest(server.url, '/')).body.toString('utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'every <script> has a src');
    assert.doesNotMatch(html, /<style/i);
    assert.doesNotMatch(html, /\sstyle=/i);
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
    for (const m of html.matchAll(/\b(?:src|href)="([^"]*)"/g)) assert.match(m[1] as string, /^\/(?!\/)/, `${m[1]} is a path on this origin`);
  });

  test('every built asset is served under /ui/ with its type and the security headers', async () => {
    const names = (await readdir('dist/web')).filter((n) => /\.(js|css|html)$/.test(n));
    assert.ok(names.includes('main.js') && names.includes('style.css') && names.includes('sw.js'), names.join(' '));
    const types: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', html: 'text/html; charset=utf-8' };
    for (const name of names) {
      const res = await rawRequest(server.url, `/ui/${name}`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers['content-type'], types[name.split('.').pop() as string], name);
      for (const [k, v] of Object.entries(SECURITY)) assert.equal(res.headers[k], v, `${name}: ${k}`);
      assert.ok(res.body.equals(await readFile(`dist/web/${name}`)), name);
    }
  });

  test('the service worker may serve /files/ (Service-Worker-Allowed)', async () => {
    const res = await rawRequest(server.url, '/ui/sw.js');
    assert.equal(res.headers['service-worker-allowed'], '/files/');
    assert.equal((await rawRequest(server.url, '/ui/main.js')).headers['service-worker-allowed'], undefined);
  });

  test('If-None-Match with the ETag is a 304 without a body; HEAD has the headers and no body', async () => {
    const first = await rawRequest(server.url, '/ui/style.css');
    const again = await rawRequest(server.url, '/ui/style.css', { headers: { 'if-none-match': String(first.headers.etag) } });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal(again.headers.etag, first.headers.etag);
    const other = await rawRequest(server.url, '/ui/style.css', { headers: { 'if-none-match': '"something-else"' } });
    assert.equal(other.status, 200);
    const head = await rawRequest(server.url, '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-security-policy'], "default-src 'self'");
    assert.ok(Number(head.headers['content-length']) > 0);
  });

  test('the API the page calls still needs the token', async () => {
    assert.equal((await rawRequest(server.url, '/files')).status, 401);
    assert.equal((await rawRequest(server.url, '/files', { headers: { authorization: 'Bearer page-secret' } })).status, 200);
  });

  test('unknown assets and paths that try to leave dist/web are 404s', async () => {
    for (const path of ['/ui/', '/ui/nope.js', '/ui/../package.json', '/ui/..%2Fpackage.json', '/ui/%2e%2e/server.js', '/ui/main.js.map', '/ui/sub/main.js', '/ui/.hidden.js', '/index.html']) {
      const res = await rawRequest(server.url, path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8', path);
    }
  });

  test('other methods on the page are 405 with Allow', async () => {
    const res = await rawRequest(server.url, '/', { method: 'POST', body: Buffer.from('x') });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET, HEAD');
  });
});

describe('web page: UI=false', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ UI: 'false' });
  });
  after(() => server.close());

  test('/ and /ui/* are 404s again, for every method, and the API is unchanged', async () => {
    for (const [method, path] of [['GET', '/'], ['HEAD', '/'], ['POST', '/'], ['GET', '/ui/main.js'], ['GET', '/ui/style.css']] as const) {
      const res = await rawRequest(server.url, path, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers['content-security-policy'], undefined);
    }
    assert.equal((await rawRequest(server.url, '/files')).status, 200);
  });
});
