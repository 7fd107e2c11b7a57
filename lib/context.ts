import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from './config.js';
import type { Store } from '../storage/store.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { LinkGrant } from './signed-links.js';
import type { FetchJobs } from '../jobs/fetch-jobs.js';

/** Everything a handler gets for one request. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request target, parsed against a dummy origin (only path and query are meaningful). */
  readonly url: URL;
  /** The method the route was chosen by: the request's, or its `X-HTTP-Method-Override` where the route honours that. */
  readonly method: string;
  readonly config: Config;
  readonly store: Store;
  /** Aborted when the client goes away, the body idles out, or shutdown gives up on the request. */
  readonly signal: AbortSignal;
  readonly requestId: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /**
   * What the signed link this request came with grants (its method, path, expiry, maxBytes);
   * null when the bearer token (or no AUTH_TOKEN) let it in. Handlers of uploads bound each
   * file by `grant.maxBytes` (handlers/upload-limits.ts fileLimit).
   */
  readonly grant: LinkGrant | null;
  /**
   * Sends `100 Continue` if the client asked for it and nothing was sent yet. The server calls it
   * before the handler, except on routes with `deferContinue`, whose handlers call it once the
   * request's headers have been judged (so a refusal comes before the body).
   */
  readonly sendContinue: () => void;
  /** Background fetch jobs, and the settings and piece budget every stored fetch shares. */
  readonly fetchJobs: FetchJobs;
}

export type Handler = (ctx: RequestContext) => Promise<void>;
