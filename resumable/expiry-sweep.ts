import type { Logger } from '../lib/log.js';
import type { Metrics } from '../lib/metrics.js';
import type { Store } from '../storage/store.js';

/** How often incomplete uploads past UPLOAD_EXPIRY_MS are looked for (the issue: "at least once a minute"). */
export const SWEEP_INTERVAL_MS = 60_000;

export interface ExpirySweep {
  /** Stops the timer (shutdown); a sweep under way finishes on its own. */
  stop(): void;
}

/**
 * Removes expired uploads at once and then every `intervalMs`, on an unref'd timer (it never keeps
 * a stopping process alive). A store without resumable uploads expires none (S3 answers 0); a
 * failed sweep is logged and the next one tries again. Sweeps never overlap.
 */
export function startExpirySweep(deps: { store: Store; log: Logger; metrics: Metrics; intervalMs?: number }): ExpirySweep {
  const uploads = deps.store;
  let running = false;
  const sweep = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      const removed = await uploads.expireUploads(new Date());
      if (removed > 0) {
        deps.metrics.resumableUploads('expired', removed);
        deps.log.info('expired uploads removed', { count: removed });
      }
    } catch (err) {
      deps.log.warn('expiry sweep failed', { err });
    } finally {
      running = false;
    }
  };
  void sweep();
  const timer = setInterval(() => void sweep(), deps.intervalMs ?? SWEEP_INTERVAL_MS).unref();
  return { stop: () => clearInterval(timer) };
}
