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

async function main(): Promise<void> {
  let config: Config;
  try {
    const parsed = loadConfig(process.argv.slice(2), process.env);
    if (parsed.help) {
      process.stdout.write(`${helpText()}\n`);
      return;
    }
    config = parsed.config;
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
  const app = createApp({ config, store, log, metrics: createMetrics() });

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

  await new Promise<void>((resolve, reject) => {
    app.server.once('error', reject);
    app.server.listen(config.port, config.host, () => resolve());
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  log.info('listening', { url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`, pid: process.pid, config: describeConfig(config) });
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`sluice: cannot start: ${message}\n`);
  process.exit(1);
});
