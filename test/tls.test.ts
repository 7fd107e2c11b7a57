/**
 * TLS without a front proxy (issue #17): TLS_CERT and TLS_KEY make sluice serve HTTPS on PORT
 * (HTTP/1.1, the chain in the cert file sent whole), never plain HTTP there; bad files stop
 * start-up with one line naming the setting and exit 2; SIGHUP reloads the pair for new
 * connections without dropping one in flight, and a bad new pair is logged and the old one
 * kept. The CA is made with `openssl` in the test (helpers/tls-ca.ts); clients trust its root only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { spawnServer, type ServerProcess } from './helpers/server.js';
import { missing, runCommand } from './helpers/commands.js';
import { poll, seededBytes, sha256 } from './helpers/http.js';
import { createTestPki, noOpenssl, type Leaf, type TestPki } from './helpers/tls-ca.js';

const SERVER_JS = resolve('dist/server.js');

const noCurl = await missing('curl');

/** The SHA-256 fingerprint of the certificate a new TLS connection to `url` is shown. */
async function servedFingerprint(url: string, ca: Buffer): Promise<string> {
  const { port } = new URL(url);
  const socket = connectTls({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost' });
  await once(socket, 'secureConnect');
  const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
  socket.destroy();
  return fingerprint;
}

function leafFingerprint(leaf: Leaf): string {
  return new X509Certificate(leaf.cert).fingerprint256;
}

interface HttpsAnswer {
  readonly status: number;
  readonly body: Buffer;
}

function https(url: string, ca: Buffer, options: RequestOptions = {}, body?: Buffer): Promise<HttpsAnswer> {
  return new Promise((done, fail) => {
    const req = request(url, { ca, agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(body);
  });
}

function storedFile(answer: HttpsAnswer): { id: string; size: number; sha256: string } {
  assert.equal(answer.status, 201, answer.body.toString());
  const file = (JSON.parse(answer.body.toString()) as { files: Array<{ id: string; size: number; sha256: string }> }).files[0];
  assert.ok(file !== undefined);
  return file;
}

describe('HTTPS with TLS_CERT and TLS_KEY', { skip: noOpenssl }, () => {
  let pki: TestPki;
  let a: Leaf;
  let b: Leaf;
  let stranger: Leaf;
  let work: string;
  let certPath: string;
  let keyPath: string;
  let proc: ServerProcess;

  before(async () => {
    pki = await createTestPki();
    [a, b, stranger] = [await pki.leaf('a'), await pki.leaf('b'), await pki.leaf('stranger')];
    work = await mkdtemp(join(tmpdir(), 'sluice-tls-'));
    // The files the server is pointed at; the reload tests overwrite them, as certbot does.
    certPath = join(work, 'fullchain.pem');
    keyPath = join(work, 'privkey.pem');
    await copyFile(a.certPath, certPath);
    await copyFile(a.keyPath, keyPath);
    proc = await spawnServer({ TLS_CERT: certPath, TLS_KEY: keyPath, MAX_FILE_BYTES: '64MiB' });
  });
  after(async () => {
    await proc?.stop();
    await rm(work, { recursive: true, force: true });
    await pki?.remove();
  });

  test('listens on https:// and logs the certificate it serves', async () => {
    assert.match(proc.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(proc.stdout(), /"msg":"TLS certificate","subject":"CN=a","validTo":"[^"]+","fingerprint256":"[0-9A-F:]+"/);
    assert.equal(await servedFingerprint(proc.url, pki.root), leafFingerprint(a));
  });

  test('the chain in the cert file is served whole: a client that trusts only the root verifies it', async () => {
    const { port } = new URL(proc.url);
    const socket = connectTls({ host: '127.0.0.1', port: Number(port), ca: pki.root, servername: 'localhost' });
    await once(socket, 'secureConnect');
    assert.equal(socket.authorized, true);
    const leaf = socket.getPeerCertificate(true);
    assert.equal(leaf.subject.CN, 'a');
    assert.equal(leaf.issuerCertificate?.subject.CN, 'sluice test intermediate');
    socket.destroy();
  });

  test('HTTP/1.1 only: a client offering h2 is given http/1.1', async () => {
    const { port } = new URL(proc.url);
    const socket = connectTls({ host: '127.0.0.1', port: Number(port), ca: pki.root, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] });
    await once(socket, 'secureConnect');
    assert.equal(socket.alpnProtocol, 'http/1.1');
    socket.destroy();
  });

  test('curl --cacert: upload (-F and -T) and download byte-exact', { skip: noCurl }, async () => {
    const data = seededBytes(7, 3 * 1024 * 1024 + 11);
    const file = join(work, 'weights.bin');
    await writeFile(file, data);
    for (const args of [['-F', `model=@${file}`, `${proc.url}/upload`], ['-T', file, `${proc.url}/upload/`]]) {
      const up = await runCommand('curl', ['-sS', '--cacert', pki.rootPath, ...args]);
      assert.equal(up.code, 0, up.stderr);
      const stored = (JSON.parse(up.stdout) as { files: Array<{ id: string; sha256: string; filename: string }> }).files[0];
      assert.equal(stored?.sha256, sha256(data));
      assert.equal(stored?.filename, 'weights.bin');
      const out = join(work, `back-${stored?.id}`);
      const down = await runCommand('curl', ['-sS', '-f', '--cacert', pki.rootPath, '-o', out, `${proc.url}/files/${stored?.id}`]);
      assert.equal(down.code, 0, down.stderr);
      assert.ok((await readFile(out)).equals(data));
    }
    // Without the root, curl refuses the server: the certificate is really checked.
    const untrusted = await runCommand('curl', ['-sS', `${proc.url}/healthz`]);
    assert.notEqual(untrusted.code, 0);
  });

  test('Node clients: https.request upload and download byte-exact, a range too', async () => {
    const data = seededBytes(8, 2 * 1024 * 1024 + 3);
    const file = storedFile(await https(`${proc.url}/upload?filename=n.bin`, pki.root, { method: 'POST', headers: { 'content-length': String(data.length) } }, data));
    assert.equal(file.sha256, sha256(data));
    const back = await https(`${proc.url}/files/${file.id}`, pki.root);
    assert.equal(back.status, 200);
    assert.ok(back.body.equals(data));
    const part = await https(`${proc.url}/files/${file.id}`, pki.root, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(data.subarray(100, 200)));
  });

  test('a plain-HTTP request on the TLS port is closed, never served', async () => {
    const before = proc.stdout();
    const { port } = new URL(proc.url);
    const received = await new Promise<Buffer>((done, fail) => {
      const socket = connectTcp(Number(port), '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => {}); // a reset is a close too
      socket.on('close', () => done(Buffer.concat(chunks)));
      setTimeout(() => fail(new Error('the connection was left open')), 10_000).unref();
    });
    assert.doesNotMatch(received.toString('latin1'), /HTTP\/1\.[01] 2\d\d/);
    assert.doesNotMatch(received.toString('latin1'), /"status":"ok"/);
    // No request reached a handler: no access line for it.
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!proc.stdout().slice(before.length).includes('"path":"/healthz"'));
    assert.equal((await https(`${proc.url}/healthz`, pki.root)).status, 200, 'HTTPS still served');
  });

  test('curl http:// on the TLS port gets no answer', { skip: noCurl }, async () => {
    const r = await runCommand('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', proc.url.replace('https:', 'http:') + '/healthz']);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '000');
  });

  test('SIGHUP mid-transfer: the new pair serves new connections, an upload and a download in flight finish byte-exact', async () => {
    const big = seededBytes(9, 24 * 1024 * 1024);
    const stored = storedFile(await https(`${proc.url}/upload/big.bin`, pki.root, { method: 'PUT', headers: { 'content-length': String(big.length) } }, big));
    assert.equal(await servedFingerprint(proc.url, pki.root), leafFingerprint(a));

    // An upload that sends its body slowly, and a download read slowly, both on pair A's connections.
    const upload = seededBytes(10, 8 * 1024 * 1024);
    const CHUNK = 256 * 1024;
    let sent = 0;
    const uploaded = new Promise<HttpsAnswer>((done, fail) => {
      const req = request(`${proc.url}/upload/slow.bin`, { method: 'PUT', ca: pki.root, agent: false, headers: { 'content-length': String(upload.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      });
      req.on('error', fail);
      const pump = (): void => {
        if (sent >= upload.length) return void req.end();
        req.write(upload.subarray(sent, sent + CHUNK));
        sent += CHUNK;
        setTimeout(pump, 40);
      };
      pump();
    });
    const hash = createHash('sha256');
    let got = 0;
    let resume: () => void = () => {};
    const downloaded = new Promise<void>((done, fail) => {
      request(`${proc.url}/files/${stored.id}`, { ca: pki.root, agent: false }, (res) => {
        res.on('data', (c: Buffer) => {
          hash.update(c);
          got += c.length;
          // Hold the download after its first bytes until the reload is done.
          if (got > 1024 * 1024 && got - c.length <= 1024 * 1024) {
            res.pause();
            resume = () => res.resume();
          }
        });
        res.on('end', done);
        res.on('error', fail);
      })
        .on('error', fail)
        .end();
    });
    await poll('the transfers to be under way', () => sent >= 2 * 1024 * 1024 && got > 1024 * 1024, 20_000);

    // What a certbot deploy hook does: new files at the same paths, then SIGHUP.
    await writeFile(certPath, b.cert);
    await writeFile(keyPath, b.key);
    process.kill(proc.child.pid as number, 'SIGHUP');
    await poll('the reload line', () => /"msg":"TLS certificate reloaded","subject":"CN=b"/.test(proc.stdout()), 10_000);
    assert.equal(await servedFingerprint(proc.url, pki.root), leafFingerprint(b), 'new connections get pair B');
    assert.ok(sent < upload.length, 'the upload was still in flight at the reload');

    resume();
    await downloaded;
    assert.equal(got, big.length);
    assert.equal(hash.digest('hex'), sha256(big));
    const file = storedFile(await uploaded);
    assert.equal(file.sha256, sha256(upload));
    const back = await https(`${proc.url}/files/${file.id}`, pki.root);
    assert.ok(back.body.equals(upload), 'the upload, read back over a pair-B connection');
  });

  test('SIGHUP with a bad new pair: logged naming the setting, the pair in use kept, serving goes on', async () => {
    const inUse = await servedFingerprint(proc.url, pki.root);
    const cases: ReadonlyArray<{ what: string; cert: Buffer | null; key: Buffer | null; setting: string }> = [
      { what: 'a key that is not the certificate’s', cert: b.cert, key: stranger.key, setting: 'TLS_KEY' },
      { what: 'a certificate file that is no certificate', cert: Buffer.from('not a certificate\n'), key: b.key, setting: 'TLS_CERT' },
      { what: 'a key file that is no key', cert: b.cert, key: Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), setting: 'TLS_KEY' },
      { what: 'a certificate file gone', cert: null, key: b.key, setting: 'TLS_CERT' },
    ];
    for (const [i, c] of cases.entries()) {
      if (c.cert === null) await rm(certPath, { force: true });
      else await writeFile(certPath, c.cert);
      if (c.key !== null) await writeFile(keyPath, c.key);
      const failures = (): number => proc.stdout().split('\n').filter((l) => l.includes('"msg":"TLS reload failed')).length;
      process.kill(proc.child.pid as number, 'SIGHUP');
      await poll(`the failure line (${c.what})`, () => failures() === i + 1, 10_000);
      const line = JSON.parse(proc.stdout().split('\n').filter((l) => l.includes('"msg":"TLS reload failed'))[i] as string) as { level: string; setting: string; message: string };
      assert.equal(line.level, 'error');
      assert.equal(line.setting, c.setting, `${c.what}: ${line.message}`);
      assert.equal(await servedFingerprint(proc.url, pki.root), inUse, `${c.what}: the pair in use is kept`);
      assert.equal((await https(`${proc.url}/healthz`, pki.root)).status, 200);
    }
    assert.equal(proc.child.exitCode, null, 'still running');
    // A good pair again: reloaded.
    await writeFile(certPath, a.cert);
    await writeFile(keyPath, a.key);
    process.kill(proc.child.pid as number, 'SIGHUP');
    await poll('the reload line', () => /"msg":"TLS certificate reloaded","subject":"CN=a"/.test(proc.stdout()), 10_000);
    assert.equal(await servedFingerprint(proc.url, pki.root), leafFingerprint(a));
  });
});

describe('TLS settings that cannot work stop start-up: one line on stderr naming the setting, exit 2', { skip: noOpenssl }, () => {
  let pki: TestPki;
  let a: Leaf;
  let other: Leaf;
  let work: string;
  before(async () => {
    pki = await createTestPki();
    [a, other] = [await pki.leaf('a'), await pki.leaf('other')];
    work = await mkdtemp(join(tmpdir(), 'sluice-tls-bad-'));
    await writeFile(join(work, 'garbage.pem'), 'hello\n');
    await writeFile(join(work, 'key-as-cert.pem'), a.key);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
    await pki?.remove();
  });

  const start = (env: Record<string, string>): { status: number | null; stderr: string; stdout: string } => {
    const r = spawnSync(process.execPath, [SERVER_JS], { env: { ...process.env, PORT: '0', DATA_DIR: join(work, 'data'), ...env }, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
  };

  const cases = (): ReadonlyArray<{ what: string; env: Record<string, string>; setting: string }> => [
    { what: 'TLS_CERT without TLS_KEY', env: { TLS_CERT: a.certPath }, setting: 'TLS_KEY' },
    { what: 'TLS_KEY without TLS_CERT', env: { TLS_KEY: a.keyPath }, setting: 'TLS_CERT' },
    { what: 'an unreadable certificate file', env: { TLS_CERT: join(work, 'missing.pem'), TLS_KEY: a.keyPath }, setting: 'TLS_CERT' },
    { what: 'an unreadable key file', env: { TLS_CERT: a.certPath, TLS_KEY: join(work, 'missing.key') }, setting: 'TLS_KEY' },
    { what: 'a certificate file that holds no certificate', env: { TLS_CERT: join(work, 'garbage.pem'), TLS_KEY: a.keyPath }, setting: 'TLS_CERT' },
    { what: 'a key where the certificate should be', env: { TLS_CERT: join(work, 'key-as-cert.pem'), TLS_KEY: a.keyPath }, setting: 'TLS_CERT' },
    { what: 'a key file that holds no key', env: { TLS_CERT: a.certPath, TLS_KEY: join(work, 'garbage.pem') }, setting: 'TLS_KEY' },
    { what: 'a mismatched pair (another certificate’s key)', env: { TLS_CERT: a.certPath, TLS_KEY: other.keyPath }, setting: 'TLS_KEY' },
  ];

  test('each case', () => {
    for (const c of cases()) {
      const r = start(c.env);
      assert.equal(r.status, 2, `${c.what}: exit ${r.status}, stderr ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${c.what}: ${r.stderr}`);
      assert.match(lines[0] as string, new RegExp(`^sluice: invalid configuration: ${c.setting}: `), c.what);
      assert.equal(r.stdout, '', `${c.what}: nothing listened`);
    }
  });
});

test('SIGHUP without TLS: nothing to reload, the server keeps running (it is not killed)', async () => {
  const proc = await spawnServer({});
  try {
    process.kill(proc.child.pid as number, 'SIGHUP');
    await poll('the SIGHUP line', () => proc.stdout().includes('SIGHUP: no TLS_CERT and TLS_KEY to reload'), 10_000);
    assert.equal((await fetch(`${proc.url}/healthz`)).status, 200);
    assert.equal(proc.child.exitCode, null);
  } finally {
    assert.equal(await proc.stop(), 0);
  }
});
