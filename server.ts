#!/usr/bin/env node
/**
 * sluice entry point: read the configuration, open the store, serve, shut down gracefully.
 * Everything about requests lives in lib/app.ts and handlers/.
 */
import { ConfigError, describeConfig, helpText, loadConfig, type Config } from './lib/config.js';
import { createApp } from './lib/app.js';
import { createLogger, resolveLogFormat } from './lib/log.js';
import { createMetrics } from './lib/prometheus.js';
import { createStore } from './storage/create-store.js';
import { LocalStore } from './storage/local-store.js';
import { describeTlsPair, loadTlsPair, type TlsPair } from './lib/tls.js';

async function main(): Promise<void> {
  let config: Config;
  let tls: TlsPair | null;
  try {
    const parsed = loadConfig(process.argv.slice(2), process.env);
    if (parsed.help) {
      process.stdout.write(`${helpText()}\n`);
      return;
    }
    config = parsed.config;
    // Unreadable, malformed or mismatched files stop start-up like any invalid setting.
    tls = await loadTlsPair(config.tlsCert, config.tlsKey);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  const log = createLogger(config.logLevel, undefined, resolveLogFormat(config.logFormat, process.stdout.isTTY === true));
  const store = await createStore(config);
  await store.open();
  if (config.directIo && store instanceof LocalStore && !store.writesDirect) {
    log.warn('DATA_DIR does not take O_DIRECT writes; files are written through the page cache', { dataDir: config.dataDir });
  }
  const app = createApp({ config, store, log, metrics: createMetrics(), tls });

  // Signal handlers go in before the "listening" line: whoever reads that line (systemd, a test,
  // a supervisor) may signal at once, and without a handler SIGTERM kills the process outright.
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // An operator who signals twice wants out now. Partial files left behind are swept by the
      // store at the next start.
      log.warn('second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('shutting down', { signal, graceMs: config.shutdownGraceMs });
    void app
      .shutdown(config.shutdownGraceMs)
      .then(async ({ aborted }) => {
        await store.close();
        log.info('stopped', { aborted });
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  // SIGHUP (systemctl reload, a certbot deploy hook): read TLS_CERT and TLS_KEY again and use
  // them for new connections; open connections and transfers go on with the pair they have. A
  // pair that fails its checks is logged and the one in use kept. Without TLS there is nothing
  // to reload, and SIGHUP must not kill the process (its default action). One reload at a time.
  let reloading: Promise<void> = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      if (tls === null) return log.info('SIGHUP: no TLS_CERT and TLS_KEY to reload');
      try {
        const pair = (await loadTlsPair(config.tlsCert, config.tlsKey)) as TlsPair;
        app.setTlsPair(pair);
        tls = pair;
        log.info('TLS certificate reloaded', describeTlsPair(pair));
      } catch (err) {
        const setting = err instanceof ConfigError ? err.setting : null;
        log.error('TLS reload failed; the certificate in use is kept', { setting, message: err instanceof Error ? err.message : String(err), inUse: describeTlsPair(tls) });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    app.server.once('error', reject);
    app.server.listen(config.port, config.host, () => resolve());
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  if (tls !== null) {
    log.info('TLS certificate', describeTlsPair(tls));
    if (Date.parse(tls.validTo) < Date.now()) log.warn('the TLS certificate has expired', describeTlsPair(tls));
  }
  const scheme = tls === null ? 'http' : 'https';
  log.info('listening', { url: `${scheme}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`, pid: process.pid, config: describeConfig(config) });
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`sluice: cannot start: ${message}\n`);
  process.exit(1);
});
