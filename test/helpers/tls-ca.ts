/**
 * A throwaway PKI made with the `openssl` command line in a temporary directory: a root CA, an
 * intermediate CA, and server certificates for 127.0.0.1 and localhost signed by the
 * intermediate. A leaf's certificate file holds the leaf and the intermediate (the chain a
 * server must send whole); clients trust the root alone.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const noOpenssl = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0 ? false : 'openssl is not installed';

export interface Leaf {
  /** PEM: the leaf certificate, then the intermediate. */
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TestPki {
  readonly dir: string;
  /** PEM of the root CA: what clients trust (curl --cacert, Node's `ca`). */
  readonly rootPath: string;
  readonly root: Buffer;
  /** A server certificate and a fresh key for 127.0.0.1 and localhost, named `name` in `dir`. */
  leaf(name: string): Promise<Leaf>;
  remove(): Promise<void>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function serial(): string {
  return `0x${randomBytes(8).toString('hex')}`;
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pki-'));
  const p = (name: string): string => join(dir, name);
  await writeFile(p('ca.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  await writeFile(
    p('leaf.ext'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  await run('openssl', ['req', '-x509', ...EC, '-keyout', p('root.key'), '-out', p('root.crt'), '-days', '2', '-subj', '/CN=sluice test root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-set_serial', serial()]);
  await run('openssl', ['req', ...EC, '-keyout', p('int.key'), '-out', p('int.csr'), '-subj', '/CN=sluice test intermediate']);
  await run('openssl', ['x509', '-req', '-in', p('int.csr'), '-CA', p('root.crt'), '-CAkey', p('root.key'), '-set_serial', serial(), '-days', '2', '-extfile', p('ca.ext'), '-out', p('int.crt')]);
  const intermediate = await readFile(p('int.crt'));
  return {
    dir,
    rootPath: p('root.crt'),
    root: await readFile(p('root.crt')),
    leaf: async (name) => {
      const keyPath = p(`${name}.key`);
      const certPath = p(`${name}.crt`);
      await run('openssl', ['req', ...EC, '-keyout', keyPath, '-out', p(`${name}.csr`), '-subj', `/CN=${name}`]);
      await run('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('int.crt'), '-CAkey', p('int.key'), '-set_serial', serial(), '-days', '1', '-extfile', p('leaf.ext'), '-out', p(`${name}.leaf.crt`)]);
      const cert = Buffer.concat([await readFile(p(`${name}.leaf.crt`)), intermediate]);
      await writeFile(certPath, cert);
      return { certPath, keyPath, cert, key: await readFile(keyPath) };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
