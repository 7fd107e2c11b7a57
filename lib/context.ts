import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from './config.js';
import type { Store } from '../storage/store.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { FetchJobs } from '../jobs/fetch-jobs.js';

/** Everything a handler gets for one request. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request target, parsed against a dummy origin (only path and query are meaningful). */
  readonly url: URL;
  readonly config: Config;
  readonly store: Store;
  /** Aborted when the client goes away, the body idles out, or shutdown gives up on the request. */
  readonly signal: AbortSignal;
  readonly requestId: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Background fetch jobs, and the settings and piece budget every stored fetch shares. */
  readonly fetchJobs: FetchJobs;
}

export type Handler = (ctx: RequestContext) => Promise<void>;
