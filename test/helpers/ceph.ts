import { execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { S3Config } from '../../lib/config.js';
import { S3Client } from '../../storage/s3/client.js';

/** The project's own gateway scripts, `<root>/test/ceph/` (this file is `<root>/test/helpers/ceph.ts`). */
const SCRIPTS = fileURLToPath(new URL('../ceph/', import.meta.url));
/** What start-rgw.sh needs; Debian: ceph-mon ceph-osd radosgw ceph-common (+ curl, uuid-runtime). */
const BINARIES = ['ceph', 'ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph-authtool', 'monmaptool', 'uuidgen', 'curl'];
export const INSTALL_HINT = 'apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common curl';

const run = promisify(execFile);

export interface Rgw {
  /** `$CEPH_DIR`: config, logs, pid files. Removed by stop(). */
  readonly dir: string;
  /** What start-rgw.sh wrote to `$CEPH_DIR/s3.env` (S3_ENDPOINT, S3_ACCESS_KEY, ...). */
  readonly env: Readonly<Record<string, string>>;
  /** An S3Config for this gateway and `bucket`, with `overrides` on top. */
  config(bucket: string, overrides?: Partial<S3Config>): S3Config;
  /** A raw client on `bucket`, to look behind the store's back. */
  client(bucket: string): S3Client;
  /** The environment of a `STORE=s3` server process on `bucket` under `prefix` (5 MiB parts). */
  serverEnv(bucket: string, prefix: string): Record<string, string>;
  stop(): Promise<void>;
}

export type RgwStart = { readonly ok: true; readonly rgw: Rgw } | { readonly ok: false; readonly reason: string };

/**
 * Starts a throwaway one-host Ceph cluster with radosgw on free 127.0.0.1 ports, in its own
 * CEPH_DIR under the temp directory. When the Ceph binaries are not installed it resolves with
 * `{ ok: false, reason }` so tests can skip with that reason; any other failure rejects.
 */
export async function startRgw(): Promise<RgwStart> {
  const missing = BINARIES.filter((b) => spawnSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' }).status !== 0);
  if (missing.length > 0) return { ok: false, reason: `Ceph RGW not available (missing ${missing.join(', ')}; ${INSTALL_HINT})` };

  const dir = await mkdtemp(join(tmpdir(), 'sluice-ceph-'));
  const [rgwPort, monPort] = await freePorts(2);
  const env = { ...process.env, CEPH_DIR: dir, RGW_PORT: String(rgwPort), MON_PORT: String(monPort) };
  const stopSync = (): void => void spawnSync('bash', [join(SCRIPTS, 'stop-rgw.sh')], { env, stdio: 'ignore' });
  // If the test process ends without calling stop() (a crash, ^C), the daemons must not outlive it.
  process.once('exit', stopSync);
  try {
    await run('bash', [join(SCRIPTS, 'start-rgw.sh')], { env, timeout: 180_000 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    stopSync();
    process.off('exit', stopSync);
    throw new Error(`start-rgw.sh failed: ${(err as Error).message}\n${stderr}`);
  }
  const s3env = parseEnvFile(await readFile(join(dir, 's3.env'), 'utf8'));
  let stopped: Promise<void> | null = null;
  return {
    ok: true,
    rgw: {
      dir,
      env: s3env,
      config: (bucket, overrides = {}) => ({
        endpoint: s3env.S3_ENDPOINT ?? null,
        region: s3env.S3_REGION ?? 'us-east-1',
        bucket,
        accessKey: s3env.S3_ACCESS_KEY ?? null,
        secretKey: s3env.S3_SECRET_KEY ?? null,
        prefix: '',
        forcePathStyle: true,
        partBytes: 5 * 1024 * 1024,
        ...overrides,
      }),
      client: (bucket) =>
        new S3Client({
          endpoint: new URL(s3env.S3_ENDPOINT as string),
          region: s3env.S3_REGION ?? 'us-east-1',
          bucket,
          accessKey: s3env.S3_ACCESS_KEY as string,
          secretKey: s3env.S3_SECRET_KEY as string,
          pathStyle: true,
        }),
      serverEnv: (bucket, prefix) => ({
        STORE: 's3',
        S3_ENDPOINT: s3env.S3_ENDPOINT as string,
        S3_REGION: s3env.S3_REGION ?? 'us-east-1',
        S3_ACCESS_KEY: s3env.S3_ACCESS_KEY as string,
        S3_SECRET_KEY: s3env.S3_SECRET_KEY as string,
        S3_FORCE_PATH_STYLE: 'true',
        S3_BUCKET: bucket,
        S3_PREFIX: prefix,
        S3_PART_BYTES: '5MiB',
        // spawnServer waits for the info-level "listening" line.
        LOG_LEVEL: 'info',
      }),
      stop: () => {
        stopped ??= run('bash', [join(SCRIPTS, 'stop-rgw.sh')], { env, timeout: 60_000 }).then(() => {
          process.off('exit', stopSync);
        });
        return stopped;
      },
    },
  };
}

function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** Ports the kernel hands out as free right now (held together so they differ). */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  for (const s of servers) {
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
  }
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
