/**
 * A certificate for the HTTPS rows: a throwaway root CA and a server certificate for
 * 127.0.0.1 made with `openssl` in a temporary directory, once per run, removed at exit. The
 * client trusts the root, so every handshake is verified as a real client's would be.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchPki {
  /** The server's certificate file (TLS_CERT) and key file (TLS_KEY). */
  readonly certPath: string;
  readonly keyPath: string;
  /** The root CA the client trusts. */
  readonly caPath: string;
}

let made: BenchPki | null = null;

/** P-256 ECDSA, as certbot issues by default since 2.0. */
export function benchPki(): BenchPki {
  if (made !== null) return made;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-pki-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const p = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=sluice bench CA']);
  openssl(['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(p('server.ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-set_serial', '1', '-days', '1', '-extfile', p('server.ext'), '-out', p('server.crt')]);
  made = { certPath: p('server.crt'), keyPath: p('server.key'), caPath: p('ca.crt') };
  return made;
}
