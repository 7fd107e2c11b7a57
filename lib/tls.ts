/**
 * TLS_CERT and TLS_KEY: the certificate (a chain in the file is served whole) and its private
 * key, read and checked before they are used, at start-up and at every reload (SIGHUP). Every
 * failure names the setting whose file is at fault, so start-up can print one line and exit 2,
 * and a reload can log it and keep the pair in use.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './config.js';

export interface TlsPair {
  /** PEM, the whole file: the certificate, then any intermediates. */
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Of the first (leaf) certificate, for the log. */
  readonly subject: string;
  readonly validTo: string;
  readonly fingerprint256: string;
}

/** Null when neither is set (plain HTTP); throws ConfigError naming TLS_CERT or TLS_KEY. */
export async function loadTlsPair(certPath: string | null, keyPath: string | null): Promise<TlsPair | null> {
  if (certPath === null && keyPath === null) return null;
  if (certPath === null) throw new ConfigError('TLS_CERT', 'is required with TLS_KEY (the certificate file, PEM)');
  if (keyPath === null) throw new ConfigError('TLS_KEY', 'is required with TLS_CERT (the private key file, PEM)');
  const cert = await readSetting('TLS_CERT', certPath);
  const key = await readSetting('TLS_KEY', keyPath);

  let leaf: X509Certificate;
  try {
    if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM block');
    leaf = new X509Certificate(cert);
  } catch {
    throw new ConfigError('TLS_CERT', `${certPath} holds no PEM certificate`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError('TLS_KEY', `${keyPath} holds no usable PEM private key (an encrypted key must be decrypted first)`);
  }
  if (!leaf.checkPrivateKey(privateKey)) throw new ConfigError('TLS_KEY', `${keyPath} is not the key of the certificate in TLS_CERT (${certPath})`);
  try {
    // What the server will do with them: anything OpenSSL still refuses (a malformed chain) shows here.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError('TLS_CERT', `${certPath} and TLS_KEY cannot be used together: ${(err as Error).message}`);
  }
  return { cert, key, subject: leaf.subject.replaceAll('\n', ', '), validTo: new Date(leaf.validTo).toISOString(), fingerprint256: leaf.fingerprint256 };
}

async function readSetting(setting: 'TLS_CERT' | 'TLS_KEY', path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConfigError(setting, `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The pair as the log shows it: never the key. */
export function describeTlsPair(pair: TlsPair): Record<string, string> {
  return { subject: pair.subject, validTo: pair.validTo, fingerprint256: pair.fingerprint256 };
}
