/**
 * Hostile input: file names. `../`, absolute paths (POSIX and Windows), NUL, CR/LF, `%2e%2e`,
 * 4,000 bytes, invalid UTF-8, the RTL override (U+202E), `.`/`..`, names of other stored files,
 * `__proto__`, sent every way a name reaches the server: a raw multipart `filename`, an RFC 8187
 * `filename*`, `?filename=` on a raw upload, a `Content-Disposition` request header and the path
 * of `PUT /upload/<name>`.
 *
 * Each upload is either refused with a 4xx (and stores nothing) or stored under a generated id,
 * never anywhere else: the whole private temporary tree holds only DATA_DIR's `<id>` and
 * `<id>.json`, and the marker in the names appears nowhere on disk. `GET`/`HEAD /files/:id` are
 * read off a raw socket: the header block is ASCII, one field per line, no injected field, and
 * `Content-Disposition` is well formed and decodes back to the stored name.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { boundaryFromContentType } from '../../multipart/content-type.js';
import type { MultipartEvent } from '../../multipart/events.js';
import { MultipartParser } from '../../multipart/parser.js';
import { SluiceError } from '../../lib/errors.js';
import {
  FILE_ID,
  Invariants,
  MULTIPART,
  errorCodeOf,
  listTree,
  multipartBody,
  parseHead,
  rawExchange,
  request,
  requestHead,
  startSluice,
  type Sluice,
} from './helpers.js';

const MARK = `pwn${randomBytes(4).toString('hex')}`;

let server: Sluice;
let inv: Invariants;
const stored: Array<{ label: string; id: string; filename: string | null }> = [];

before(async () => {
  server = await startSluice({ FSYNC: 'false' });
  inv = await Invariants.create(server);
});
after(async () => {
  await server?.stop();
});

type Attack = { label: string; send: 'filename' | 'filename*' | 'query' | 'disposition' | 'path'; value: Buffer | string };

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function attacks(canaryId: string): Attack[] {
  const raw = (label: string, value: Buffer | string): Attack => ({ label: `filename="${label}"`, send: 'filename', value });
  const ext = (label: string, value: string): Attack => ({ label: `filename*=${label}`, send: 'filename*', value });
  const query = (label: string, value: string): Attack => ({ label: `?filename=${label}`, send: 'query', value });
  const path = (label: string, value: string): Attack => ({ label: `PUT /upload/${label}`, send: 'path', value });
  return [
    raw('../ path', `../../../../../../tmp/${MARK}-dotdot`),
    raw('..\\ path', `..\\..\\..\\..\\${MARK}-backslash`),
    raw('absolute', `/tmp/${MARK}-absolute`),
    raw('drive', `C:\\Windows\\${MARK}-drive`),
    raw('%2e%2e', `%2e%2e%2f%2e%2e%2f${MARK}-pct`),
    raw('4000 bytes', `${MARK}${'A'.repeat(4000 - MARK.length)}`),
    raw('4000 bytes of UTF-8', `${MARK}${'é'.repeat((4000 - MARK.length) / 2)}`),
    raw('invalid UTF-8', Buffer.concat([b(MARK), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80, 0xed, 0xa0, 0x80])])),
    raw('RTL override', `${MARK}\u202Etxt.exe`),
    raw('NUL', Buffer.concat([b(`${MARK}-a`), Buffer.from([0]), b('b')])),
    raw('CR LF', `${MARK}\r\nX-Injected: yes`),
    raw('lone CR', `${MARK}\rX-Injected: yes`),
    raw('.', '.'),
    raw('..', '..'),
    raw('a stored id', canaryId),
    raw('a stored record', `${canaryId}.json`),
    raw('a temporary name', `.${canaryId}.partial`),
    raw('__proto__', '__proto__'),
    ext('../ encoded', `UTF-8''..%2F..%2F..%2Ftmp%2F${MARK}-ext-dotdot`),
    ext('NUL', `UTF-8''${MARK}%00-nul`),
    ext('CR LF', `UTF-8''${MARK}%0D%0AX-Injected%3A%20yes`),
    ext('control bytes', `UTF-8''${MARK}%01%1B%5B31m%7F`),
    ext('RTL override', `UTF-8''%E2%80%AE${MARK}txt.exe`),
    ext('absolute', `UTF-8''%2Ftmp%2F${MARK}-ext-abs`),
    ext('quote and backslash', `UTF-8''${MARK}%22%5C%22`),
    ext('4000 bytes', `UTF-8''${MARK}${'%41'.repeat(4000 - MARK.length)}`),
    query('../', `..%2F..%2F..%2Ftmp%2F${MARK}-query`),
    query('NUL', `${MARK}%00x`),
    query('CR LF', `${MARK}%0D%0AX-Injected:%20yes`),
    query('RTL', `%E2%80%AE${MARK}`),
    query('invalid UTF-8', `${MARK}%FF%FE`),
    query('%2e%2e', `%252e%252e%252f${MARK}`),
    query('4000 bytes', `${MARK}${'B'.repeat(4000 - MARK.length)}`),
    path('../', `..%2F..%2F..%2Ftmp%2F${MARK}-path`),
    path('..\\', `..%5C..%5C${MARK}-path-backslash`),
    path('absolute', `%2Ftmp%2F${MARK}-path-abs`),
    path('NUL', `${MARK}%00x`),
    path('CR LF', `${MARK}%0D%0AX-Injected:%20yes`),
    path('RTL', `%E2%80%AE${MARK}txt.exe`),
    path('invalid UTF-8', `${MARK}%FF%FE`),
    path('malformed escape', `${MARK}%G1`),
    path('%2e%2e', '%2e%2e'),
    path('%252e%252e', `%252e%252e%252f${MARK}`),
    path('4000 bytes', `${MARK}${'C'.repeat(4000 - MARK.length)}`),
    path('a stored id', canaryId),
    path('__proto__', '__proto__'),
    { label: 'Content-Disposition: ../', send: 'disposition', value: `attachment; filename="../../tmp/${MARK}-cd"` },
    { label: 'Content-Disposition: filename* CR LF', send: 'disposition', value: `attachment; filename*=UTF-8''${MARK}%0D%0AX-Injected%3A%20yes` },
  ];
}

async function upload(a: Attack): Promise<{ status: number; body: Buffer }> {
  if (a.send === 'filename' || a.send === 'filename*') {
    const value = typeof a.value === 'string' ? b(a.value) : a.value;
    const header =
      a.send === 'filename'
        ? Buffer.concat([b('Content-Disposition: form-data; name="file"; filename="'), value, b('"')])
        : Buffer.concat([b('Content-Disposition: form-data; name="file"; filename*='), value]);
    const { body } = multipartBody([{ headers: [header, 'Content-Type: application/octet-stream'], data: `contents of ${a.label}` }]);
    return request(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART }, body });
  }
  if (a.send === 'path') {
    return request(server.url, `/upload/${String(a.value)}`, { method: 'PUT', body: b(`contents of ${a.label}`) });
  }
  if (a.send === 'query') {
    return request(server.url, `/upload?filename=${String(a.value)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: b(`contents of ${a.label}`) });
  }
  return request(server.url, '/upload', { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-disposition': String(a.value) }, body: b(`contents of ${a.label}`) });
}

/** Header names a file answer may carry. */
const KNOWN_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-disposition',
  'etag',
  'last-modified',
  'accept-ranges',
  'x-content-type-options',
  'x-request-id',
  'date',
  'connection',
  'keep-alive',
  'cache-control',
  'content-security-policy',
  'content-digest',
  'repr-digest',
]);
const FIELD_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+: ?[\x20-\x7e]*$/;
const DISPOSITION = /^(attachment|inline)(?:; filename="([\x20-\x21\x23-\x5b\x5d-\x7e]*)")?(?:; filename\*=UTF-8''((?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-F]{2})*))?$/;

/** Reads GET or HEAD /files/:id off a raw socket and checks the header block byte by byte. */
async function checkServedName(method: 'GET' | 'HEAD', id: string, filename: string | null, label: string): Promise<void> {
  const ex = await rawExchange(server.port, { send: requestHead(method, `/files/${id}`, { connection: 'close' }), timeoutMs: 5_000 });
  const head = parseHead(ex.received);
  assert.ok(head !== null, `${label}: no header block`);
  assert.equal(head.status, 200, label);
  for (const line of head.lines) {
    assert.match(line, FIELD_LINE, `${label}: a header line that is not one plain ASCII field: ${JSON.stringify(line)}`);
    const name = line.slice(0, line.indexOf(':')).toLowerCase();
    assert.ok(KNOWN_HEADERS.has(name), `${label}: unexpected header ${JSON.stringify(line)} (injection?)`);
  }
  const cd = head.headers.get('content-disposition');
  assert.equal(cd?.length, 1, `${label}: exactly one Content-Disposition`);
  const m = DISPOSITION.exec(cd?.[0] ?? '');
  assert.ok(m !== null, `${label}: malformed Content-Disposition ${JSON.stringify(cd)}`);
  const [, , fallback, encoded] = m;
  const served = encoded !== undefined ? Buffer.from(decodeURIComponent(encoded), 'utf8').toString('utf8') : fallback ?? null;
  if (filename === null || filename === '') assert.equal(fallback, undefined, `${label}: a name where none was stored`);
  else assert.equal(served, filename, `${label}: Content-Disposition names ${JSON.stringify(served)}, the record ${JSON.stringify(filename)}`);
  if (fallback !== undefined) assert.doesNotMatch(fallback, /[/\\]|\.\./, `${label}: the fallback name keeps a path: ${fallback}`);
}

async function findMarker(dir: string, depth: number): Promise<string[]> {
  const hits: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return hits;
  }
  for (const e of entries) {
    if (e.name.includes(MARK)) hits.push(`${dir}/${e.name}`);
    if (e.isDirectory() && depth > 0 && !e.isSymbolicLink()) hits.push(...(await findMarker(`${dir}/${e.name}`, depth - 1)));
  }
  return hits;
}

test('hostile file names: stored under the id, never outside DATA_DIR, served without header injection', { timeout: 120_000 }, async () => {
  const canaryId = inv.canaries[0]?.id as string;
  const outcomes: string[] = [];
  for (const a of attacks(canaryId)) {
    const res = await upload(a);
    if (res.status !== 201) {
      // Refusing a name outright is fine; a 5xx or storing something is not.
      assert.ok(res.status >= 400 && res.status < 500, `${a.label}: ${res.status} ${res.body.toString()}`);
      outcomes.push(`${a.label} → ${res.status} ${errorCodeOf(res)}`);
      await inv.check(`refused name ${a.label}`);
      continue;
    }
    const file = (JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string; filename: string | null }> }).files[0];
    assert.ok(file !== undefined, a.label);
    assert.match(file.id, FILE_ID, `${a.label}: id ${file.id}`);
    assert.ok(!inv.canaries.some((c) => c.id === file.id), `${a.label}: reused a stored id`);
    if (file.filename !== null) assert.doesNotMatch(file.filename, /[/\\]/, `${a.label}: stored name keeps a path: ${JSON.stringify(file.filename)}`);
    outcomes.push(`${a.label} → 201 ${JSON.stringify(file.filename === null ? null : file.filename.length > 40 ? `${file.filename.slice(0, 20)}…(${file.filename.length})` : file.filename)}`);
    inv.keep(file.id);
    stored.push({ label: a.label, id: file.id, filename: file.filename });
    await checkServedName('GET', file.id, file.filename, `GET ${a.label}`);
    await checkServedName('HEAD', file.id, file.filename, `HEAD ${a.label}`);
    const back = await request(server.url, `/files/${file.id}`);
    assert.equal(back.body.toString('utf8'), `contents of ${a.label}`, `${a.label}: the stored bytes`);
  }
  console.log(`names:\n  ${outcomes.join('\n  ')}`);

  // Nothing but ids in DATA_DIR, nothing but DATA_DIR in the private root.
  const tree = await listTree(server.root);
  const allowed = new Set(['data/', ...[...inv.expected].flatMap((id) => [`data/${id}`, `data/${id}.json`])]);
  assert.deepEqual(tree.filter((p) => !allowed.has(p)), [], 'unexpected paths under the server root');
  // The marker of the hostile names is nowhere on disk: not around the root, not in the temp dir, not in the checkout.
  const hits = [...(await findMarker(tmpdir(), 1)), ...(await findMarker(process.cwd(), 2)), ...(await findMarker('/', 0)), ...(await findMarker('/etc', 0))];
  assert.deepEqual(hits, [], 'a hostile name became a path');
  // The listing is valid JSON that names every stored file.
  const list = JSON.parse((await request(server.url, '/files')).body.toString('utf8')) as { files: Array<{ id: string }> };
  for (const s of stored) assert.ok(list.files.some((f) => f.id === s.id), `${s.label}: missing from GET /files`);
  await inv.check('hostile names');
});

/**
 * A destination that parses what /proxy sends with sluice's own parser (issue 6: a body the
 * encoder builds is parsed back by our parser into the same parts) and answers with the names.
 */
async function startParsingDestination(): Promise<{ url: string; close: () => Promise<void> }> {
  const dest = createHttpServer((req, res) => {
    void (async () => {
      try {
        const parser = new MultipartParser({ boundary: boundaryFromContentType(req.headers['content-type']) });
        const names: Array<string | null> = [];
        req.pipe(parser);
        for await (const batch of parser as AsyncIterable<MultipartEvent[]>) for (const ev of batch) if (ev.type === 'part') names.push(ev.part.filename);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ names }));
      } catch (err) {
        const code = err instanceof SluiceError ? err.code : 'UNEXPECTED';
        res.writeHead(400, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ destinationError: code }));
        req.resume();
      }
    })();
  });
  dest.listen(0, '127.0.0.1');
  await once(dest, 'listening');
  return {
    url: `http://127.0.0.1:${(dest.address() as AddressInfo).port}/`,
    close: async () => {
      dest.closeAllConnections();
      dest.close();
      await once(dest, 'close');
    },
  };
}

test('hostile names through /proxy: the destination gets a body our own parser reads back, names intact', { timeout: 60_000 }, async () => {
  const dest = await startParsingDestination();
  const proxy = await startSluice({ PROXY_TARGET: dest.url, FSYNC: 'false' });
  try {
    const proxyInv = await Invariants.create(proxy, { canarySizes: [1] });
    const problems: string[] = [];
    for (const a of attacks('x').filter((x) => x.send === 'filename' || x.send === 'filename*')) {
      const value = typeof a.value === 'string' ? b(a.value) : a.value;
      const header =
        a.send === 'filename'
          ? Buffer.concat([b('Content-Disposition: form-data; name="file"; filename="'), value, b('"')])
          : Buffer.concat([b('Content-Disposition: form-data; name="file"; filename*='), value]);
      const { body } = multipartBody([{ headers: [header, 'Content-Type: application/octet-stream'], data: 'x' }]);
      // What sluice itself makes of the name (the upload route parses the same way).
      const direct = await request(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART }, body });
      const res = await request(proxy.url, '/proxy', { method: 'POST', headers: { 'content-type': MULTIPART }, body });
      if (direct.status !== 201) {
        if (res.status !== direct.status) problems.push(`${a.label}: refused by /upload with ${direct.status}, /proxy answered ${res.status}`);
        continue;
      }
      const expected = (JSON.parse(direct.body.toString('utf8')) as { files: Array<{ id: string; filename: string | null }> }).files[0];
      if (expected !== undefined) inv.keep(expected.id);
      if (res.status !== 200) {
        problems.push(`${a.label}: /proxy answered ${res.status} ${res.body.toString('utf8')} (the name as parsed: ${JSON.stringify(expected?.filename)})`);
        continue;
      }
      const names = (JSON.parse(res.body.toString('utf8')) as { names: Array<string | null> }).names;
      // The upload record keeps an empty name as null; the parser reports it as ''. Control
      // bytes other than CR/LF (only `filename*` can carry them) travel in their percent form,
      // as no header line may hold them raw (RFC 9110 5.5); `"`, CR and LF round-trip exactly.
      const sent = expected?.filename == null ? null : expected.filename.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
      if (names.length !== 1 || (names[0] || null) !== sent) {
        problems.push(`${a.label}: the destination read ${JSON.stringify(names)}, sluice had ${JSON.stringify(expected?.filename)}`);
      }
    }
    assert.deepEqual(problems, []);
    await proxyInv.check('hostile names through /proxy');
    await inv.check('hostile names uploaded for /proxy comparison');
  } finally {
    await proxy.stop();
    await dest.close();
  }
});
