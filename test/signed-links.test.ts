/**
 * Expiring signed links (issue #17): `POST /links` hands out a URL that lets its holder make one
 * kind of request without the bearer token until it expires; the HMAC covers everything the
 * link grants; expired is 403 LINK_EXPIRED, tampered or used for another request 403
 * LINK_INVALID; upload links bound every file by their maxBytes; a link for `POST /uploads`
 * yields derived links for the uploads it creates (lib/signed-links.ts uploadLinkQuery).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../lib/config.js';
import { SluiceError } from '../lib/errors.js';
import { UPLOAD_METHODS, linkKey, signLink, uploadLinkQuery, verifyLink, type LinkGrant } from '../lib/signed-links.js';
import { parseLinkRequest } from '../handlers/links.js';
import { spawnServer, startServer, type ServerProcess, type TestServer } from './helpers/server.js';
import { missing, runCommand } from './helpers/commands.js';
import { BOUNDARY, MULTIPART_TYPE, assertError, filePart, multipartBody, poll, rawRequest, seededBytes, sha256 } from './helpers/http.js';

const TOKEN = 'links-test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

function configOf(env: Record<string, string>): Config {
  const parsed = loadConfig([], { PORT: '0', ...env });
  assert.ok(!parsed.help);
  return parsed.config;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SluiceError, String(err));
    assert.equal(err.status, 403);
    return err.code;
  }
  return 'no error';
}

const noCurl = await missing('curl');

describe('the signature (lib/signed-links.ts)', () => {
  const config = configOf({ AUTH_TOKEN: TOKEN });
  const key = linkKey(config) as Buffer;
  const now = Date.UTC(2026, 0, 1);
  const expires = now / 1000 + 60;
  const download: LinkGrant = { kind: 'link', methods: ['GET', 'HEAD'], path: '/files/AAAAAAAAAAAAAAAAAAAAAA', expires, maxBytes: null };
  const upload: LinkGrant = { kind: 'link', methods: ['POST'], path: '/upload', expires, maxBytes: 1000 };

  test('a GET link grants GET and HEAD on its path until it expires', () => {
    const q = signLink(key, download);
    assert.deepEqual(verifyLink(key, 'GET', download.path, q, now), download);
    assert.deepEqual(verifyLink(key, 'HEAD', download.path, q, now), download);
    assert.equal(code(() => verifyLink(key, 'GET', download.path, q, expires * 1000)), 'LINK_EXPIRED');
    assert.equal(code(() => verifyLink(key, 'GET', download.path, q, expires * 1000 - 1)), 'no error');
  });

  test('another method, another path: LINK_INVALID', () => {
    const q = signLink(key, download);
    assert.equal(code(() => verifyLink(key, 'DELETE', download.path, q, now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'GET', '/files/BBBBBBBBBBBBBBBBBBBBBB', q, now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'GET', `${download.path}/`, q, now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'GET', '/files', q, now)), 'LINK_INVALID');
    const u = signLink(key, upload);
    assert.equal(code(() => verifyLink(key, 'PUT', '/upload', u, now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'POST', '/uploads', u, now)), 'LINK_INVALID');
  });

  test('everything the link grants is signed: expiry, maxBytes, signature bytes; a tampered link is LINK_INVALID, even when expired', () => {
    const q = signLink(key, upload);
    const tamper = (name: string, value: string | null): URLSearchParams => {
      const t = new URLSearchParams(q);
      if (value === null) t.delete(name);
      else t.set(name, value);
      return t;
    };
    assert.equal(code(() => verifyLink(key, 'POST', '/upload', q, now)), 'no error');
    assert.equal(code(() => verifyLink(key, 'POST', '/upload', tamper('expires', String(expires + 3600)), now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'POST', '/upload', tamper('expires', String(expires - 3600)), now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'POST', '/upload', tamper('max', '1000000'), now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'POST', '/upload', tamper('max', null), now)), 'LINK_INVALID');
    const sig = q.get('sig') as string;
    const flipped = `${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`;
    assert.equal(code(() => verifyLink(key, 'POST', '/upload', tamper('sig', flipped), now)), 'LINK_INVALID');
    for (const [name, value] of [['sig', ''], ['sig', `${sig}A`], ['sig', sig.slice(1)], ['expires', '-1'], ['expires', '1e9'], ['expires', ''], ['max', '01000'], ['max', 'x']] as const) {
      assert.equal(code(() => verifyLink(key, 'POST', '/upload', tamper(name, value), now)), 'LINK_INVALID', `${name}=${value}`);
    }
    assert.equal(code(() => verifyLink(key, 'POST', '/upload', tamper('expires', String(expires - 3600)), expires * 1000 + 1)), 'LINK_INVALID');
  });

  test('the kind is signed: a derived upload link is not a POST /links link with the same methods and path', () => {
    const path = '/uploads/x1';
    const asLink = signLink(key, { kind: 'link', methods: [...UPLOAD_METHODS], path, expires, maxBytes: null });
    assert.equal(code(() => verifyLink(key, 'PATCH', path, asLink, now)), 'LINK_INVALID');
    const derived = signLink(key, { kind: 'upload', methods: [...UPLOAD_METHODS], path, expires, maxBytes: null });
    assert.equal(code(() => verifyLink(key, 'PATCH', path, derived, now)), 'no error');
  });

  test('the key is derived (HKDF), never the raw token: a link signed with the token itself is refused', () => {
    assert.notDeepEqual(key, Buffer.from(TOKEN));
    const q = signLink(Buffer.from(TOKEN), download);
    assert.equal(code(() => verifyLink(key, 'GET', download.path, q, now)), 'LINK_INVALID');
    // And a hand-made HMAC with the token over the same text as well.
    const text = ['sluice-link-v1', 'link', 'GET,HEAD', download.path, String(expires), '-'].join('\n');
    const forged = new URLSearchParams({ expires: String(expires), sig: createHmac('sha256', TOKEN).update(text).digest('base64url') });
    assert.equal(code(() => verifyLink(key, 'GET', download.path, forged, now)), 'LINK_INVALID');
  });

  test('changing LINK_SECRET (or AUTH_TOKEN when LINK_SECRET is unset) revokes every link; no AUTH_TOKEN, no key', () => {
    const q = signLink(key, download);
    const withSecret = linkKey(configOf({ AUTH_TOKEN: TOKEN, LINK_SECRET: 'one secret' })) as Buffer;
    assert.equal(code(() => verifyLink(withSecret, 'GET', download.path, q, now)), 'LINK_INVALID');
    const rotated = linkKey(configOf({ AUTH_TOKEN: TOKEN, LINK_SECRET: 'another secret' })) as Buffer;
    const q2 = signLink(withSecret, download);
    assert.equal(code(() => verifyLink(rotated, 'GET', download.path, q2, now)), 'LINK_INVALID');
    // With LINK_SECRET set, a new AUTH_TOKEN leaves the links alone: the secret is their key.
    const sameSecret = linkKey(configOf({ AUTH_TOKEN: 'a-new-token', LINK_SECRET: 'one secret' })) as Buffer;
    assert.equal(code(() => verifyLink(sameSecret, 'GET', download.path, q2, now)), 'no error');
    const newToken = linkKey(configOf({ AUTH_TOKEN: 'a-new-token' })) as Buffer;
    assert.equal(code(() => verifyLink(newToken, 'GET', download.path, q, now)), 'LINK_INVALID');
    assert.equal(linkKey(configOf({})), null);
    assert.equal(linkKey(configOf({ LINK_SECRET: 'x' })), null);
  });
});

describe('derived links for the resumable uploads a link created (uploadLinkQuery)', () => {
  const config = configOf({ AUTH_TOKEN: TOKEN });
  const key = linkKey(config) as Buffer;
  const now = Date.now();
  const expires = Math.ceil(now / 1000) + 600;
  const creating: LinkGrant = { kind: 'link', methods: ['POST'], path: '/uploads', expires, maxBytes: 5000 };

  test('a link for POST /uploads authorizes POST /uploads', () => {
    assert.deepEqual(verifyLink(key, 'POST', '/uploads', signLink(key, creating), now), creating);
  });

  test('the derived query reaches /uploads/<id> with HEAD, PATCH, DELETE, OPTIONS: same expiry, same maxBytes', () => {
    const query = uploadLinkQuery({ config, grant: creating }, '/uploads/Abc_123-x');
    assert.ok(query !== null);
    const params = new URLSearchParams(query);
    assert.deepEqual([...params.keys()], ['expires', 'max', 'sig']);
    for (const method of ['HEAD', 'PATCH', 'DELETE', 'OPTIONS']) {
      const grant = verifyLink(key, method, '/uploads/Abc_123-x', params, now);
      assert.deepEqual(grant, { kind: 'upload', methods: ['DELETE', 'HEAD', 'OPTIONS', 'PATCH'], path: '/uploads/Abc_123-x', expires, maxBytes: 5000 });
    }
    assert.equal(code(() => verifyLink(key, 'PATCH', '/uploads/another', params, now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'GET', '/uploads/Abc_123-x', params, now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'POST', '/uploads', params, now)), 'LINK_INVALID');
    assert.equal(code(() => verifyLink(key, 'PATCH', '/uploads/Abc_123-x', params, expires * 1000)), 'LINK_EXPIRED');
  });

  test('no derived link for a request that came with the token, with another link, or through a derived link', () => {
    assert.equal(uploadLinkQuery({ config, grant: null }, '/uploads/x'), null);
    assert.equal(uploadLinkQuery({ config, grant: { ...creating, path: '/upload' } }, '/uploads/x'), null);
    assert.equal(uploadLinkQuery({ config, grant: { kind: 'upload', methods: [...UPLOAD_METHODS], path: '/uploads/x', expires, maxBytes: null } }, '/uploads/y'), null);
    assert.throws(() => uploadLinkQuery({ config, grant: creating }, '/files/x'));
  });
});

describe('POST /links: what a link request may ask', () => {
  const now = 1_800_000_000_000;
  const bad = (body: unknown): string => {
    try {
      parseLinkRequest(body, now);
      return 'accepted';
    } catch (err) {
      return (err as SluiceError).code;
    }
  };

  test('downloads and deletes of one file, uploads; expiry rounded up to whole seconds', () => {
    assert.deepEqual(parseLinkRequest({ method: 'GET', path: '/files/abc', expiresIn: 3600 }, now + 1), {
      kind: 'link',
      methods: ['GET', 'HEAD'],
      path: '/files/abc',
      expires: now / 1000 + 1 + 3600,
      maxBytes: null,
    });
    assert.equal(parseLinkRequest({ method: 'post', path: '/uploads', maxBytes: '1GiB' }, now).maxBytes, 1024 ** 3);
    assert.equal(parseLinkRequest({ method: 'PUT', path: '/upload/w.bin', maxBytes: 10 }, now).maxBytes, 10);
    assert.equal(parseLinkRequest({ method: 'DELETE', path: '/files/abc' }, now).expires, now / 1000 + 3600);
  });

  test('anything else is 400 BAD_LINK_REQUEST', () => {
    for (const body of [
      null,
      [],
      'GET',
      { method: 'GET', path: '/links' },
      { method: 'POST', path: '/links' },
      { method: 'GET', path: '/fetch' },
      { method: 'POST', path: '/proxy' },
      { method: 'GET', path: '/metrics' },
      { method: 'GET', path: '/files' },
      { method: 'POST', path: '/files/abc' },
      { method: 'GET', path: '/files/../links' },
      { method: 'GET', path: '/files/abc?x=1' },
      { method: 'GET', path: 'files/abc' },
      { method: 'GET', path: '/files/abc', expiresIn: 0 },
      { method: 'GET', path: '/files/abc', expiresIn: 1.5 },
      { method: 'GET', path: '/files/abc', expiresIn: '3600' },
      { method: 'GET', path: '/files/abc', expiresIn: 7 * 24 * 3600 + 1 },
      { method: 'GET', path: '/files/abc', maxBytes: 10 },
      { method: 'POST', path: '/upload', maxBytes: -1 },
      { method: 'POST', path: '/upload', maxBytes: 'lots' },
      { method: 'G E T', path: '/files/abc' },
    ]) {
      assert.equal(bad(body), 'BAD_LINK_REQUEST', JSON.stringify(body));
    }
  });
});

async function createLink(base: string, body: unknown, headers: Record<string, string> = {}): Promise<{ url: string; expires: string }> {
  const res = await fetch(`${base}/links`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  const answer = JSON.parse(text) as { url: string; expires: string };
  assert.deepEqual(Object.keys(answer).sort(), ['expires', 'url']);
  return answer;
}

/** The link's path and query, sent to `base` (the URL may name PUBLIC_URL's host). */
function target(url: string): string {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}

async function uploadWithToken(base: string, data: Buffer): Promise<string> {
  const res = await rawRequest(base, '/upload?filename=shared.bin', { method: 'POST', headers: AUTH, body: data });
  assert.equal(res.status, 201);
  return (JSON.parse(res.body.toString()) as { files: Array<{ id: string }> }).files[0]?.id as string;
}

describe('signed links over HTTP', () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startServer({ AUTH_TOKEN: TOKEN, MAX_FILE_BYTES: '1MiB' });
    dir = await mkdtemp(join(tmpdir(), 'sluice-links-'));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a download link: absolute url from Host, works without the token for GET and HEAD, byte-exact', { skip: noCurl }, async () => {
    const data = seededBytes(1, 200_000);
    const id = await uploadWithToken(server.url, data);
    const before = Date.now();
    const link = await createLink(server.url, { method: 'GET', path: `/files/${id}`, expiresIn: 3600 });
    assert.match(link.url, new RegExp(`^${server.url}/files/${id}\\?expires=\\d+&sig=[A-Za-z0-9_-]{43}$`));
    const expires = Date.parse(link.expires);
    assert.ok(expires >= before + 3600_000 && expires <= Date.now() + 3601_000, link.expires);
    assert.equal(new Date(expires).toISOString(), link.expires);
    assert.equal(Number(new URL(link.url).searchParams.get('expires')) * 1000, expires);

    const out = join(dir, 'download.bin');
    const r = await runCommand('curl', ['-sS', '-f', '-o', out, link.url]);
    assert.equal(r.code, 0, r.stderr);
    const got = await readFile(out);
    assert.equal(sha256(got), sha256(data));
    const head = await fetch(link.url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(data.length));
    const ranged = await fetch(link.url, { headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(10, 20)));
  });

  test('the download link does not grant another method or another path; without link or token: 401', async () => {
    const id = await uploadWithToken(server.url, Buffer.from('keep me'));
    const other = await uploadWithToken(server.url, Buffer.from('other'));
    const link = await createLink(server.url, { method: 'GET', path: `/files/${id}`, expiresIn: 60 });
    const query = new URL(link.url).search;
    assertError(await rawRequest(server.url, `/files/${id}${query}`, { method: 'DELETE' }), 403, 'LINK_INVALID');
    assertError(await rawRequest(server.url, `/files/${other}${query}`), 403, 'LINK_INVALID');
    assertError(await rawRequest(server.url, `/files${query}`), 403, 'LINK_INVALID');
    assertError(await rawRequest(server.url, `/links${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') }), 403, 'LINK_INVALID');
    assertError(await rawRequest(server.url, `/files/${id}`), 401, 'UNAUTHORIZED');
    // Still there: the refused DELETE did nothing.
    assert.equal((await rawRequest(server.url, `/files/${id}`, { headers: AUTH })).body.toString(), 'keep me');
  });

  test('a tampered link is 403 LINK_INVALID', async () => {
    const id = await uploadWithToken(server.url, Buffer.from('x'));
    const link = new URL((await createLink(server.url, { method: 'GET', path: `/files/${id}` })).url);
    const later = new URL(link);
    later.searchParams.set('expires', String(Number(link.searchParams.get('expires')) + 86400));
    assertError(await rawRequest(server.url, target(later.href)), 403, 'LINK_INVALID');
    const sig = link.searchParams.get('sig') as string;
    const forged = new URL(link);
    forged.searchParams.set('sig', `${sig[0] === 'a' ? 'b' : 'a'}${sig.slice(1)}`);
    assertError(await rawRequest(server.url, target(forged.href)), 403, 'LINK_INVALID');
  });

  test('an expired link is 403 LINK_EXPIRED', async () => {
    const id = await uploadWithToken(server.url, Buffer.from('soon gone'));
    const link = await createLink(server.url, { method: 'GET', path: `/files/${id}`, expiresIn: 2 });
    assert.equal((await rawRequest(server.url, target(link.url))).status, 200);
    const wait = Date.parse(link.expires) - Date.now() + 50;
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    assertError(await rawRequest(server.url, target(link.url)), 403, 'LINK_EXPIRED');
  });

  test('an upload link: as many uploads as wanted, each file up to maxBytes (curl -F, raw, multipart), one byte more is FILE_TOO_LARGE', { skip: noCurl }, async () => {
    const link = await createLink(server.url, { method: 'POST', path: '/upload', expiresIn: 600, maxBytes: 1000 });
    assert.match(link.url, /\/upload\?expires=\d+&max=1000&sig=/);
    const exact = join(dir, 'exact.bin');
    const over = join(dir, 'over.bin');
    await writeFile(exact, seededBytes(2, 1000));
    await writeFile(over, seededBytes(3, 1001));
    for (let i = 0; i < 2; i += 1) {
      const r = await runCommand('curl', ['-sS', '-w', '\n%{http_code}', '-F', `a=@${exact}`, '-F', `b=@${exact}`, link.url]);
      assert.match(r.stdout, /\n201$/, r.stdout);
    }
    const tooBig = await runCommand('curl', ['-sS', '-w', '\n%{http_code}', '-F', `a=@${over}`, link.url]);
    assert.match(tooBig.stdout, /"code":"FILE_TOO_LARGE".*\n413$/s);
    // A raw body: ?filename= may be added (it is not part of what the link grants).
    const raw = await rawRequest(server.url, `${target(link.url)}&filename=raw.bin`, { method: 'POST', body: seededBytes(4, 1000) });
    assert.equal(raw.status, 201, raw.body.toString());
    assert.equal((JSON.parse(raw.body.toString()) as { files: Array<{ filename: string }> }).files[0]?.filename, 'raw.bin');
    const files = await server.files();
    assertError(await rawRequest(server.url, target(link.url), { method: 'POST', body: seededBytes(5, 1001), headers: { expect: '100-continue' } }), 413, 'FILE_TOO_LARGE');
    assertError(await rawRequest(server.url, target(link.url), { method: 'POST', body: [seededBytes(5, 1001)], chunked: true }), 413, 'FILE_TOO_LARGE');
    assert.deepEqual(await server.files(), files, 'nothing stored by the refused uploads');
    // It grants POST /upload, nothing else.
    assertError(await rawRequest(server.url, target(link.url), { method: 'PUT', body: Buffer.from('x') }), 403, 'LINK_INVALID');
    assertError(await rawRequest(server.url, target(link.url).replace('/upload?', '/files?')), 403, 'LINK_INVALID');
  });

  test("an upload link's multipart body declared longer than any acceptable one (maxBytes in place of MAX_FILE_BYTES): 413 before the body", async () => {
    const link = await createLink(server.url, { method: 'POST', path: '/upload', maxBytes: 1000 });
    const body = multipartBody(BOUNDARY, [filePart('a', 'a.bin', seededBytes(6, 800 * 1024))]);
    // Within MAX_FILE_BYTES (1 MiB) and its bound, far over the link's: refused from the head alone.
    const answer = await new Promise<string>((resolve, reject) => {
      const { port } = new URL(server.url);
      const socket = connect(Number(port), '127.0.0.1', () =>
        socket.write(`POST ${target(link.url)} HTTP/1.1\r\nhost: x\r\ncontent-type: ${MULTIPART_TYPE}\r\ncontent-length: ${100 * 1024 * 1024}\r\nexpect: 100-continue\r\n\r\n`),
      );
      let text = '';
      socket.setEncoding('latin1').on('data', (d: string) => {
        text += d;
        if (text.includes('}')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /"code":"REQUEST_TOO_LARGE".*the signed link's maxBytes/);
    const res = await rawRequest(server.url, target(link.url), { method: 'POST', headers: { 'content-type': MULTIPART_TYPE }, body });
    assertError(res, 413, 'FILE_TOO_LARGE');
  });

  test('PUT /upload/<name> links, and the bearer token still works beside them', async () => {
    const link = await createLink(server.url, { method: 'PUT', path: '/upload/w.bin', maxBytes: 10 });
    const res = await rawRequest(server.url, target(link.url), { method: 'PUT', body: Buffer.from('0123456789') });
    assert.equal(res.status, 201);
    assert.equal((JSON.parse(res.body.toString()) as { files: Array<{ filename: string }> }).files[0]?.filename, 'w.bin');
    assertError(await rawRequest(server.url, target(link.url).replace('w.bin', 'x.bin'), { method: 'PUT', body: Buffer.from('x') }), 403, 'LINK_INVALID');
    // A valid token wins over a link: no maxBytes then.
    const withToken = await rawRequest(server.url, target(link.url), { method: 'PUT', headers: AUTH, body: Buffer.alloc(100) });
    assert.equal(withToken.status, 201);
  });

  test('a link for POST /uploads (resumable uploads) is handed out', async () => {
    const link = await createLink(server.url, { method: 'POST', path: '/uploads', maxBytes: 5000, expiresIn: 60 });
    assert.match(link.url, /\/uploads\?expires=\d+&max=5000&sig=/);
  });

  test('bad link requests: 400 BAD_LINK_REQUEST, 415 without JSON, 401 without the token', async () => {
    const post = (body: string, headers: Record<string, string>): Promise<Response> => fetch(`${server.url}/links`, { method: 'POST', headers, body });
    const json = { ...AUTH, 'content-type': 'application/json' };
    for (const [body, status, errorCode] of [
      ['{"method":"GET","path":"/fetch"}', 400, 'BAD_LINK_REQUEST'],
      ['{"method":"GET","path":"/files/a/../../links"}', 400, 'BAD_LINK_REQUEST'],
      ['{"method":"GET","path":"/files/a","expiresIn":-5}', 400, 'BAD_LINK_REQUEST'],
      ['{"method":', 400, 'BAD_JSON'],
    ] as const) {
      const res = await post(body, json);
      assert.equal(res.status, status, body);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, errorCode);
    }
    const form = await post('{"method":"GET","path":"/files/a"}', { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 415);
    await form.arrayBuffer();
    const anonymous = await post('{"method":"GET","path":"/files/a"}', { 'content-type': 'application/json' });
    assert.equal(anonymous.status, 401);
    await anonymous.arrayBuffer();
  });
});

describe('PUBLIC_URL, LINK_SECRET, no AUTH_TOKEN', () => {
  test('the url is built on PUBLIC_URL (its path prefix kept)', async () => {
    const server = await startServer({ AUTH_TOKEN: TOKEN, PUBLIC_URL: 'https://files.example.com/sluice/' });
    try {
      const id = await uploadWithToken(server.url, Buffer.from('public'));
      const link = await createLink(server.url, { method: 'GET', path: `/files/${id}` });
      assert.match(link.url, new RegExp(`^https://files\\.example\\.com/sluice/files/${id}\\?expires=\\d+&sig=`));
      // Behind a proxy that strips /sluice, the link works as the proxy passes it on.
      const res = await rawRequest(server.url, target(link.url).replace('/sluice', ''));
      assert.equal(res.body.toString(), 'public');
    } finally {
      await server.close();
    }
  });

  test('a new LINK_SECRET revokes the links made with the old one', async () => {
    const a = await startServer({ AUTH_TOKEN: TOKEN, LINK_SECRET: 'first secret' });
    let link: { url: string };
    try {
      link = await createLink(a.url, { method: 'GET', path: '/files/AAAAAAAAAAAAAAAAAAAAAA' });
      assert.equal((await rawRequest(a.url, target(link.url))).status, 404, 'accepted (no such file)');
    } finally {
      await a.close();
    }
    const b = await startServer({ AUTH_TOKEN: TOKEN, LINK_SECRET: 'second secret' });
    try {
      assertError(await rawRequest(b.url, target(link.url)), 403, 'LINK_INVALID');
    } finally {
      await b.close();
    }
  });

  test('without AUTH_TOKEN, /links is 404 (everything is open anyway)', async () => {
    const server = await startServer({ LINK_SECRET: 'unused' });
    try {
      const res = await rawRequest(server.url, '/links', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"method":"GET","path":"/files/a"}') });
      assertError(res, 404, 'NOT_FOUND');
    } finally {
      await server.close();
    }
  });
});

describe('links never reach a log line (child process)', () => {
  let proc: ServerProcess;
  before(async () => (proc = await spawnServer({ AUTH_TOKEN: TOKEN, LOG_LEVEL: 'debug' })));
  after(() => proc.stop());

  test('neither the url POST /links answers nor its query, used, refused or expired', async () => {
    const id = await uploadWithToken(proc.url, Buffer.from('secret data'));
    const link = await createLink(proc.url, { method: 'GET', path: `/files/${id}`, expiresIn: 2 });
    const sig = new URL(link.url).searchParams.get('sig') as string;
    assert.equal((await rawRequest(proc.url, target(link.url))).status, 200);
    assert.equal((await rawRequest(proc.url, target(link.url), { method: 'DELETE' })).status, 403);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(link.expires) - Date.now() + 50)));
    assert.equal((await rawRequest(proc.url, target(link.url))).status, 403);
    await poll('the access lines', () => proc.stdout().split('\n').filter((l) => l.includes('"status":403')).length >= 2);
    const out = proc.stdout();
    assert.ok(out.includes(`"path":"/files/${id}"`), 'the requests are logged, by path');
    for (const secret of [link.url, sig, 'expires=', 'sig=', TOKEN]) assert.ok(!out.includes(secret), `the log holds ${secret}`);
  });
});
