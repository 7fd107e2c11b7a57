/**
 * What the request lifecycle reports. The Prometheus registry behind it renders
 * `GET /metrics`; see `renderMetrics`.
 */
export interface RequestObservation {
  readonly route: string;
  readonly method: string;
  readonly status: number;
  readonly durationSeconds: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export type ResumableEvent = 'created' | 'completed' | 'expired' | 'terminated';

export interface Metrics {
  observeRequest(observation: RequestObservation): void;
  uploadStarted(): void;
  uploadFinished(outcome: 'ok' | 'aborted'): void;
  filesStored(count: number): void;
  /** Resumable uploads created, completed (became a file, or a partial upload done), expired or terminated. */
  resumableUploads(event: ResumableEvent, count?: number): void;
  /** Body bytes a resumable upload took (POST and PATCH bodies that reached the store). */
  resumableBytes(count: number): void;
  /** Body bytes received from origins by stored fetches (POST /fetch, fetch jobs), retries included. */
  fetchedBytes(via: 'fetch' | 'job', bytes: number): void;
  /** A fetch job reached a final state. */
  fetchJobFinished(state: 'done' | 'failed' | 'cancelled'): void;
  /** Prometheus text exposition format 0.0.4. */
  render(): Promise<string>;
}
