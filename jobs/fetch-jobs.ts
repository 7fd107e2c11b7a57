import type { Config } from '../lib/config.js';
import { NotFoundError, ServiceUnavailableError, SluiceError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from '../lib/metrics.js';
import { toSluiceError } from '../lib/respond.js';
import type { FetchRequest } from '../handlers/fetch-request.js';
import type { FetchSettings } from '../net/fetch-body.js';
import { PieceBudget } from '../net/piece-budget.js';
import type { RetryEvent } from '../net/resuming-body.js';
import { newFileId } from '../storage/file-id.js';
import type { Store } from '../storage/store.js';
import { FINAL_STATES, JOB_KIND, jobView, parseJob, type FetchJob, type FinalState } from './fetch-job.js';
import { runFetchJob } from './run-fetch-job.js';

/**
 * Jobs kept at most, in any state. Finished ones are forgotten, oldest first, to make room for
 * new ones; when every one is still queued or running, a new one is refused (503). So memory
 * and the listing never grow with the number of jobs ever submitted.
 */
export const MAX_KEPT_JOBS = 1000;
/** How often finished jobs past FETCH_JOB_TTL_MS are swept. */
const SWEEP_EVERY_MS = 60_000;
/** How often a running job's rate is measured. */
const RATE_EVERY_MS = 1_000;

export interface FetchJobsDeps {
  readonly config: Config;
  readonly store: Store;
  readonly log: Logger;
  readonly metrics: Metrics;
}

interface Running {
  readonly controller: AbortController;
  done: Promise<void>;
  bytesPerSecond: number | null;
  sampledBytes: number;
  sampledAt: number;
}

/** The reasons a running job is stopped for: shutdown leaves it to go on after a restart, cancel ends it. */
const SHUTDOWN = new ServiceUnavailableError('SHUTTING_DOWN', 'The server stopped; the job goes on after a restart');
const CANCEL = new SluiceError('CANCELLED', 'Cancelled by DELETE /fetches/<id>', 499);

/**
 * Background fetch jobs (`/fetches`): a queue of at most MAX_FETCH_JOBS running at once, kept as
 * documents in the store (kind `fetch-job`) so that a restart finds them; each one a resumable
 * upload that sluice feeds from the origin (runFetchJob). Also the fetch settings and the piece
 * budget every stored fetch shares, POST /fetch included.
 */
export class FetchJobs {
  /**
   * Pieces held in memory beyond each transfer's streaming one: what MAX_FETCH_JOBS jobs on
   * FETCH_CONNECTIONS connections each would hold. POST /fetch requests draw from the same
   * budget, so their number does not multiply it.
   */
  readonly pieceBudget: PieceBudget;
  private readonly config: Config;
  private readonly store: Store;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly jobs = new Map<string, FetchJob>();
  private readonly queue: string[] = [];
  private readonly running = new Map<string, Running>();
  /** Each job's document writes, one after the other (a later state never overwritten by an earlier one). */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly loaded: Promise<void>;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopping = false;

  constructor(deps: FetchJobsDeps) {
    this.config = deps.config;
    this.store = deps.store;
    this.log = deps.log;
    this.metrics = deps.metrics;
    this.pieceBudget = new PieceBudget(deps.config.maxFetchJobs * (deps.config.fetchConnections - 1));
    this.loaded = this.load().catch((err: unknown) => this.log.error('fetch jobs could not be loaded', { err }));
    const sweep = setInterval(() => void this.sweep(), Math.min(SWEEP_EVERY_MS, Math.max(1_000, this.config.fetchJobTtlMs)));
    const rates = setInterval(() => this.sampleRates(), RATE_EVERY_MS);
    for (const t of [sweep, rates]) t.unref();
    this.timers.push(sweep, rates);
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

  /** A new job, queued (the URL was checked by the caller); 503 when MAX_KEPT_JOBS are all unfinished. */
  async submit(request: FetchRequest): Promise<FetchJob> {
    await this.loaded;
    if (this.stopping) throw new ServiceUnavailableError('SHUTTING_DOWN', 'The server is shutting down', 5);
    if (this.jobs.size >= MAX_KEPT_JOBS && !(await this.forgetOldestFinished())) {
      throw new ServiceUnavailableError('TOO_MANY_FETCH_JOBS', `${MAX_KEPT_JOBS} fetch jobs are queued or running; retry later`, 60);
    }
    const job: FetchJob = {
      id: newFileId(),
      url: request.url.href,
      filename: request.filename,
      sha256: request.sha256,
      state: 'queued',
      bytes: 0,
      total: null,
      retries: 0,
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      file: null,
      error: null,
      origin: null,
    };
    await this.persist(job);
    this.jobs.set(job.id, job);
    this.queue.push(job.id);
    this.log.info('fetch job queued', { jobId: job.id });
    this.pump();
    return job;
  }

  /**
   * Whether `id` is a job still queued or running here: its upload is sluice's own, fed by the
   * job, and the resumable routes must not reach it (a HEAD there would take its append over).
   */
  isActive(id: string): boolean {
    return this.running.has(id) || this.queue.includes(id);
  }

  async get(id: string): Promise<FetchJob | null> {
    await this.loaded;
    return this.jobs.get(id) ?? null;
  }

  /** Every kept job, newest first. */
  async list(): Promise<FetchJob[]> {
    await this.loaded;
    return [...this.jobs.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1));
  }

  /** The job as a client sees it. */
  view(job: FetchJob): Record<string, unknown> {
    return jobView(job, this.rateOf(job));
  }

  /**
   * DELETE: a queued or running job is cancelled (its bytes removed, the job kept as `cancelled`)
   * and returned; a finished one is forgotten (its file stays) and null is returned. 404 when unknown.
   */
  async cancel(id: string): Promise<FetchJob | null> {
    await this.loaded;
    const job = this.jobs.get(id);
    if (job === undefined) throw new NotFoundError(`No fetch job ${id}`);
    if (FINAL_STATES.has(job.state)) {
      this.jobs.delete(id);
      await this.forget(id);
      return null;
    }
    const running = this.running.get(id);
    if (running !== undefined) {
      running.controller.abort(CANCEL);
      await running.done;
      return job;
    }
    const queued = this.queue.indexOf(id);
    if (queued !== -1) this.queue.splice(queued, 1);
    await this.finish(job, 'cancelled', null);
    return job;
  }

  /** Stops running jobs where they are (they go on after a restart) and takes no new ones. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    await this.loaded;
    for (const r of this.running.values()) r.controller.abort(SHUTDOWN);
    await Promise.all([...this.running.values()].map((r) => r.done));
    await Promise.all(this.writes.values());
  }

  /** Start-up: the kept jobs; those that were running go first, before the queued ones. */
  private async load(): Promise<void> {
    const jobs = (await this.store.listDocuments(JOB_KIND)).map(parseJob).filter((j): j is FetchJob => j !== null);
    jobs.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
    for (const job of jobs) this.jobs.set(job.id, job);
    const resumed = jobs.filter((j) => j.state === 'running');
    for (const job of resumed) job.state = 'queued';
    this.queue.push(...resumed.map((j) => j.id), ...jobs.filter((j) => j.state === 'queued' && !resumed.includes(j)).map((j) => j.id));
    if (resumed.length > 0) this.log.info('fetch jobs resumed after a restart', { jobs: resumed.map((j) => j.id) });
    await this.sweep();
    this.pump();
  }

  private pump(): void {
    while (!this.stopping && this.running.size < this.config.maxFetchJobs && this.queue.length > 0) {
      const job = this.jobs.get(this.queue.shift() as string);
      if (job !== undefined && job.state === 'queued') this.start(job);
    }
  }

  private start(job: FetchJob): void {
    const controller = new AbortController();
    const running: Running = { controller, done: Promise.resolve(), bytesPerSecond: null, sampledBytes: job.bytes, sampledAt: performance.now() };
    this.running.set(job.id, running);
    job.state = 'running';
    job.startedAt ??= new Date().toISOString();
    running.done = this.run(job, controller.signal).finally(() => {
      this.running.delete(job.id);
      this.pump();
    });
  }

  private async run(job: FetchJob, signal: AbortSignal): Promise<void> {
    const settings = this.settings('job', {
      onRetry: (retry) => {
        job.retries += 1;
        this.log.warn('fetch job: origin body broke, resuming', { jobId: job.id, position: retry.position, attempt: retry.attempt, delayMs: retry.delayMs, reason: (retry.reason as { code?: string }).code ?? retry.reason.message });
      },
    });
    try {
      await this.persist(job);
      const file = await runFetchJob(job, { config: this.config, store: this.store, settings, persist: (j) => this.persist(j) }, signal);
      if (signal.aborted && signal.reason === CANCEL) {
        // Cancelled as it completed: nothing of it stays.
        await this.store.delete(job.id);
        return await this.finish(job, 'cancelled', null);
      }
      job.file = file;
      job.bytes = file.size;
      this.metrics.filesStored(1);
      await this.finish(job, 'done', null);
    } catch (caught) {
      if (signal.aborted && signal.reason === SHUTDOWN) {
        // Its bytes are durable in its upload; the document still says running: a restart goes on.
        this.log.info('fetch job stopped for shutdown', { jobId: job.id, bytes: job.bytes });
        return;
      }
      await this.store.deleteUpload(job.id).catch((err: unknown) => this.log.error('fetch job: could not remove its upload', { jobId: job.id, err }));
      if (signal.aborted && signal.reason === CANCEL) return await this.finish(job, 'cancelled', null);
      const err = toSluiceError(caught);
      if (err.status >= 500 && err.status !== 502 && err.status !== 503 && err.status !== 504 && err.status !== 507) this.log.error('fetch job failed', { jobId: job.id, err: caught });
      await this.finish(job, 'failed', { code: err.code, message: err.status === 500 ? 'Internal server error' : err.message });
    }
  }

  private async finish(job: FetchJob, state: FinalState, error: FetchJob['error']): Promise<void> {
    job.state = state;
    job.error = error;
    job.finishedAt = new Date().toISOString();
    this.metrics.fetchJobFinished(state);
    this.log.info('fetch job finished', { jobId: job.id, state, bytes: job.bytes, retries: job.retries, ...(error === null ? {} : { error: error.code }) });
    // A failed write is logged by persist; the job's state in memory is still right.
    await this.persist(job).catch(() => {});
  }

  private persist(job: FetchJob): Promise<void> {
    const snapshot = structuredClone(job);
    const previous = this.writes.get(job.id) ?? Promise.resolve();
    const write = previous.then(() => this.store.putDocument(JOB_KIND, job.id, snapshot));
    const settled = write.catch((err: unknown) => this.log.error('fetch job: could not save its state', { jobId: job.id, err }));
    this.writes.set(job.id, settled);
    void settled.then(() => {
      if (this.writes.get(job.id) === settled) this.writes.delete(job.id);
    });
    return write;
  }

  private async forget(id: string): Promise<void> {
    await (this.writes.get(id) ?? Promise.resolve());
    await this.store.deleteDocument(JOB_KIND, id);
  }

  /** Makes room for one job; false when every kept job is still queued or running. */
  private async forgetOldestFinished(): Promise<boolean> {
    let oldest: FetchJob | null = null;
    for (const job of this.jobs.values()) {
      if (FINAL_STATES.has(job.state) && (oldest === null || (job.finishedAt ?? '') < (oldest.finishedAt ?? ''))) oldest = job;
    }
    if (oldest === null) return false;
    this.jobs.delete(oldest.id);
    await this.forget(oldest.id);
    return true;
  }

  /** Forgets finished jobs older than FETCH_JOB_TTL_MS (their files stay). */
  private async sweep(): Promise<void> {
    const cutoff = Date.now() - this.config.fetchJobTtlMs;
    for (const job of [...this.jobs.values()]) {
      if (!FINAL_STATES.has(job.state) || Date.parse(job.finishedAt ?? '') > cutoff) continue;
      this.jobs.delete(job.id);
      await this.forget(job.id).catch((err: unknown) => this.log.error('fetch job: could not forget it', { jobId: job.id, err }));
    }
  }

  private sampleRates(): void {
    const now = performance.now();
    for (const [id, r] of this.running) {
      const job = this.jobs.get(id);
      if (job === undefined) continue;
      r.bytesPerSecond = Math.max(0, Math.round(((job.bytes - r.sampledBytes) * 1000) / (now - r.sampledAt)));
      r.sampledBytes = job.bytes;
      r.sampledAt = now;
    }
  }

  /** Bytes per second: over the last second while running; the average of the run once done; else null. */
  private rateOf(job: FetchJob): number | null {
    if (job.state === 'running') return this.running.get(job.id)?.bytesPerSecond ?? null;
    if (job.state !== 'done' || job.startedAt === null || job.finishedAt === null) return null;
    const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
    return seconds > 0 ? Math.round(job.bytes / seconds) : null;
  }
}
