/**
 * Durable offsets across `kill -9`: `node dist/server.js` with FSYNC=true is killed outright while
 * a PATCH is streaming, started again on the same DATA_DIR, and the upload resumes from what HEAD
 * says: an offset at least the last one reported before the crash, whose bytes are exactly the
 * client's (the finished file's sha256 is the source's). Needs a build (`npm test` makes one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawRequest, seededBytes, sha256 } from './helpers/http.js';
import { spawnServer } from './helpers/server.js';

const MiB = 1024 * 1024;

for (const dialect of ['tus', 'draft'] as const) {
  test(`${dialect}: kill -9 during a PATCH with FSYNC=true, restart, HEAD, resume: byte-exact`, async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-crash-'));
    const data = seededBytes(dialect === 'tus' ? 301 : 302, 12 * MiB);
    const protocol = dialect === 'tus' ? { 'tus-resumable': '1.0.0' } : { 'upload-draft-interop-version': '8' };
    const bodyType = dialect === 'tus' ? 'application/offset+octet-stream' : 'application/partial-upload';
    const completion = (last: boolean): Record<string, string> => (dialect === 'tus' ? {} : { 'upload-complete': last ? '?1' : '?0' });
    let server = await spawnServer({ DATA_DIR: dataDir, FSYNC: 'true' });
    try {
      // Creation with the first MiB: the offset reported here must survive the crash.
      const created = await rawRequest(server.url, '/uploads', {
        method: 'POST',
        headers: { ...protocol, ...completion(false), 'upload-length': String(data.length), 'content-type': bodyType },
        body: data.subarray(0, MiB),
      });
      assert.equal(created.status, 201, created.body.toString());
      const reported = Number(created.headers['upload-offset']);
      assert.equal(reported, MiB);
      const location = String(created.headers.location);

      // A PATCH that streams the next bytes slowly; the server is killed in the middle of it.
      const { port } = new URL(server.url);
      const patch = request({
        host: '127.0.0.1',
        port,
        method: 'PATCH',
        path: location,
        headers: { ...protocol, ...completion(true), 'upload-offset': String(MiB), 'content-type': bodyType, 'content-length': String(data.length - MiB) },
      });
      patch.on('error', () => {});
      patch.on('response', (res) => res.resume());
      let at = MiB;
      for (let i = 0; i < 12; i += 1) {
        patch.write(data.subarray(at, at + 256 * 1024));
        at += 256 * 1024;
        await new Promise((r) => setTimeout(r, 40));
      }
      server.child.kill('SIGKILL');
      await once(server.child, 'exit');
      patch.destroy();

      server = await spawnServer({ DATA_DIR: dataDir, FSYNC: 'true' });
      const head = await rawRequest(server.url, location, { method: 'HEAD', headers: protocol });
      assert.equal(head.status, dialect === 'tus' ? 200 : 204, `HEAD after the restart: ${head.status}`);
      const offset = Number(head.headers['upload-offset']);
      t.diagnostic(`reported before the crash ${reported}, sent ${at}, offset after the restart ${offset}`);
      assert.ok(offset >= reported, `offset ${offset} went below the reported ${reported}`);
      assert.ok(offset <= at, `offset ${offset} is past what was sent (${at})`);

      const rest = await rawRequest(server.url, location, {
        method: 'PATCH',
        headers: { ...protocol, ...completion(true), 'upload-offset': String(offset), 'content-type': bodyType },
        body: data.subarray(offset),
      });
      assert.ok(rest.status === 204 || rest.status === 201, `${rest.status} ${rest.body.toString()}`);
      const id = location.slice('/uploads/'.length);
      const file = await rawRequest(server.url, `/files/${id}`);
      assert.equal(file.status, 200);
      assert.equal(sha256(file.body), sha256(data), 'the bytes before and after the crash are exactly the client\'s');
    } finally {
      await server.stop('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}
