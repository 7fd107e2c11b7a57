import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig, type Config } from '../../lib/config.js';
import { createApp, type App } from '../../lib/app.js';
import { createLogger } from '../../lib/log.js';
import { createMetrics } from '../../lib/prometheus.js';
import { LocalStore } from '../../storage/local-store.js';
import type { Store } from '../../storage/store.js';

export interface TestServer {
  readonly url: string;
  readonly dataDir: string;
  readonly app: App;
  readonly store: Store;
  readonly config: Config;
  /** Names in DATA_DIR, temporary ones included. */
  files(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Starts the real app in this process on 127.0.0.1:<any port> with a fresh DATA_DIR.
 * `env` takes the same variables as the server (`{ MAX_FILE_BYTES: '1MiB' }`).
 */
export async function startServer(env: Record<string, string> = {}, store?: Store, options: { expirySweepMs?: number } = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-test-'));
  const parsed = loadConfig([], { LOG_LEVEL: 'silent', PORT: '0', DATA_DIR: dataDir, ...env });
  if (parsed.help) throw new Error('unreachable');
  const config = parsed.config;
  const theStore = store ?? new LocalStore(dataDir, { uploadExpiryMs: config.uploadExpiryMs });
  await theStore.open();
  const app = createApp({ config, store: theStore, log: createLogger(config.logLevel), metrics: createMetrics(), ...options });
  app.server.listen(0, '127.0.0.1');
  await once(app.server, 'listening');
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dataDir,
    app,
    store: theStore,
    config,
    files: () => readdir(dataDir),
    close: async () => {
      await app.shutdown(0);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ServerProcess {
  readonly url: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Everything the process printed on stdout so far. */
  stdout(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `node dist/server.js` (build first) as a child process with a fresh DATA_DIR. */
export async function spawnServer(env: Record<string, string> = {}, args: string[] = []): Promise<ServerProcess> {
  const dataDir = env.DATA_DIR ?? (await mkdtemp(join(tmpdir(), 'sluice-proc-')));
  const child = spawn(process.execPath, [resolve('dist/server.js'), ...args], {
    env: { ...process.env, PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const url = await new Promise<string>((res, rej) => {
    const onData = (): void => {
      const m = /"msg":"listening","url":"([^"]+)"/.exec(out);
      if (m) {
        child.stdout.off('data', onData);
        res(m[1] as string);
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => rej(new Error(`server exited with ${code}: ${err}`)));
  });
  return {
    url,
    dataDir,
    child,
    stdout: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, 'exit')) as [number | null];
      if (env.DATA_DIR === undefined) await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
