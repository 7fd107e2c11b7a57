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

  constructor(deps: FetchJobsDeps) {
    this.config = deps.config;
    this.pieceBudget = new PieceBudget(deps.config.maxFetchJobs * (deps.config.fetchConnections - 1));
  }

  /** The settings of one stored fetch (retries, connections, pieces, timeouts, the SSRF allow list). */
  settings(extra: { onRetry?: (retry: RetryEvent) => void } = {}): FetchSettings {
    const c = this.config;
    return {
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
