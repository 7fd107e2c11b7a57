import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from '../lib/metrics.js';
import type { FetchSettings } from '../net/fetch-body.js';
import { PieceBudget } from '../net/piece-budget.js';
import type { RetryEvent } from '../net/resuming-body.js';
import type { Store } from '../storage/store.js';

export interface FetchJobsDeps {
  readonly config: Config;
  readonly store: Store;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/**
 * Fetching for the whole process: the settings every stored fetch runs with, and the budget of
 * ranged pieces they share (POST /fetch and background jobs alike).
 */
export class FetchJobs {
  /**
   * Pieces held in memory beyond each transfer's streaming one: what MAX_FETCH_JOBS jobs on
   * FETCH_CONNECTIONS connections each would hold. POST /fetch requests draw from the same
   * budget, so their number does not multiply it.
   */
  readonly pieceBudget: PieceBudget;
  private readonly config: Config;
  private readonly metrics: Metrics;

  constructor(deps: FetchJobsDeps) {
    this.config = deps.config;
    this.metrics = deps.metrics;
    this.pieceBudget = new PieceBudget(deps.config.maxFetchJobs * (deps.config.fetchConnections - 1));
  }

  /**
   * The settings of one fetch (retries, connections, pieces, timeouts, the SSRF allow list);
   * `via` counts its bytes in `sluice_fetched_bytes_total` (null: a relay, not counted there).
   */
  settings(via: 'fetch' | 'job' | null, extra: { onRetry?: (retry: RetryEvent) => void } = {}): FetchSettings {
    const c = this.config;
    return {
      ...(via === null ? {} : { onBytes: (bytes: number) => this.metrics.fetchedBytes(via, bytes) }),
      retries: c.fetchRetries,
      timeoutMs: c.fetchTimeoutMs,
      allow: c.fetchAllow,
      connections: c.fetchConnections,
      pieceBytes: c.fetchPieceBytes,
      budget: this.pieceBudget,
      ...extra,
    };
  }

  /** Stops what runs; resolves once it has stopped. */
  async stop(): Promise<void> {}
}
