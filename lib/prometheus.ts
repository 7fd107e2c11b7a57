import { readdir, readFile } from 'node:fs/promises';
import type { Metrics, RequestObservation, ResumableEvent } from './metrics.js';

/** Request duration buckets in seconds: from a health check to a many-GiB transfer. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

interface Histogram {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** A small Prometheus registry for exactly the series sluice exposes. */
export function createMetrics(): Metrics {
  const requests = new Map<string, number>();
  const durations = new Map<string, Histogram>();
  const received = new Map<string, number>();
  const sent = new Map<string, number>();
  let uploadsInFlight = 0;
  let filesTotal = 0;
  let abortedTotal = 0;
  const resumable: Record<ResumableEvent, number> = { created: 0, completed: 0, expired: 0, terminated: 0 };
  let resumableBytes = 0;
  const fetched = new Map<string, number>();
  const fetchJobs = new Map<string, number>();

  const add = (map: Map<string, number>, key: string, n: number): void => void map.set(key, (map.get(key) ?? 0) + n);

  return {
    observeRequest(o: RequestObservation): void {
      add(requests, labels({ route: o.route, method: o.method, status: String(o.status) }), 1);
      const routeKey = labels({ route: o.route });
      let h = durations.get(routeKey);
      if (h === undefined) {
        h = { counts: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
        durations.set(routeKey, h);
      }
      for (let i = 0; i < DURATION_BUCKETS.length; i += 1) if (o.durationSeconds <= (DURATION_BUCKETS[i] as number)) h.counts[i] = (h.counts[i] as number) + 1;
      h.sum += o.durationSeconds;
      h.count += 1;
      add(received, routeKey, o.bytesIn);
      add(sent, routeKey, o.bytesOut);
    },
    uploadStarted(): void {
      uploadsInFlight += 1;
    },
    uploadFinished(outcome): void {
      uploadsInFlight -= 1;
      if (outcome === 'aborted') abortedTotal += 1;
    },
    filesStored(count: number): void {
      filesTotal += count;
    },
    resumableUploads(event: ResumableEvent, count = 1): void {
      resumable[event] += count;
    },
    resumableBytes(count: number): void {
      resumableBytes += count;
    },
    fetchedBytes(via, bytes): void {
      add(fetched, labels({ via }), bytes);
    },
    fetchJobFinished(state): void {
      add(fetchJobs, labels({ state }), 1);
    },
    async render(): Promise<string> {
      const out: string[] = [];
      const family = (name: string, type: string, help: string): void => void out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      family('sluice_http_requests_total', 'counter', 'HTTP requests answered, by route, method and status.');
      for (const [l, v] of requests) out.push(`sluice_http_requests_total${l} ${v}`);
      family('sluice_http_request_duration_seconds', 'histogram', 'Time from request start to the end of the answer.');
      for (const [l, h] of durations) {
        const inner = l.slice(1, -1);
        DURATION_BUCKETS.forEach((b, i) => out.push(`sluice_http_request_duration_seconds_bucket{${inner},le="${b}"} ${h.counts[i]}`));
        out.push(`sluice_http_request_duration_seconds_bucket{${inner},le="+Inf"} ${h.count}`);
        out.push(`sluice_http_request_duration_seconds_sum${l} ${h.sum}`, `sluice_http_request_duration_seconds_count${l} ${h.count}`);
      }
      family('sluice_received_bytes_total', 'counter', 'Bytes received from clients (headers and body), by route.');
      for (const [l, v] of received) out.push(`sluice_received_bytes_total${l} ${v}`);
      family('sluice_sent_bytes_total', 'counter', 'Bytes sent to clients (headers and body), by route.');
      for (const [l, v] of sent) out.push(`sluice_sent_bytes_total${l} ${v}`);
      family('sluice_uploads_in_flight', 'gauge', 'Uploads (and proxied uploads) being received now.');
      out.push(`sluice_uploads_in_flight ${uploadsInFlight}`);
      family('sluice_upload_files_total', 'counter', 'Files stored.');
      out.push(`sluice_upload_files_total ${filesTotal}`);
      family('sluice_upload_aborted_total', 'counter', 'Uploads that failed or were aborted; their files were removed.');
      out.push(`sluice_upload_aborted_total ${abortedTotal}`);
      const events: ReadonlyArray<[ResumableEvent, string]> = [
        ['created', 'Resumable uploads created (tus or draft).'],
        ['completed', 'Resumable uploads completed: stored as a file, or a partial upload finished.'],
        ['expired', 'Incomplete resumable uploads removed after UPLOAD_EXPIRY_MS.'],
        ['terminated', 'Resumable uploads terminated by the client (DELETE).'],
      ];
      for (const [event, help] of events) {
        family(`sluice_resumable_uploads_${event}_total`, 'counter', help);
        out.push(`sluice_resumable_uploads_${event}_total ${resumable[event]}`);
      }
      family('sluice_resumable_received_bytes_total', 'counter', 'Body bytes of resumable uploads that reached the store.');
      out.push(`sluice_resumable_received_bytes_total ${resumableBytes}`);
      family('sluice_fetched_bytes_total', 'counter', 'Body bytes received from origins by POST /fetch (via="fetch") and fetch jobs (via="job"), retries included.');
      for (const [l, v] of fetched) out.push(`sluice_fetched_bytes_total${l} ${v}`);
      family('sluice_fetch_jobs_total', 'counter', 'Fetch jobs finished, by final state (done, failed, cancelled).');
      for (const [l, v] of fetchJobs) out.push(`sluice_fetch_jobs_total${l} ${v}`);
      out.push(...(await processMetrics()));
      return `${out.join('\n')}\n`;
    },
  };
}

const START_TIME_SECONDS = Math.floor(Date.now() / 1000 - process.uptime());

async function processMetrics(): Promise<string[]> {
  const cpu = process.cpuUsage();
  const out = [
    '# HELP process_resident_memory_bytes Resident memory size in bytes.',
    '# TYPE process_resident_memory_bytes gauge',
    `process_resident_memory_bytes ${process.memoryUsage.rss()}`,
    '# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.',
    '# TYPE process_cpu_seconds_total counter',
    `process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`,
    '# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.',
    '# TYPE process_start_time_seconds gauge',
    `process_start_time_seconds ${START_TIME_SECONDS}`,
  ];
  const fds = await readdir('/proc/self/fd').then((l) => l.length, () => null);
  if (fds !== null) {
    out.push('# HELP process_open_fds Number of open file descriptors.', '# TYPE process_open_fds gauge', `process_open_fds ${fds}`);
  }
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const maxFds = /Max open files\s+(\d+)/.exec(limits)?.[1];
  if (maxFds !== undefined) {
    out.push('# HELP process_max_fds Maximum number of open file descriptors.', '# TYPE process_max_fds gauge', `process_max_fds ${maxFds}`);
  }
  return out;
}

/** `{route="upload",method="POST"}` with Prometheus label-value escaping. */
function labels(pairs: Record<string, string>): string {
  const inner = Object.entries(pairs)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`)
    .join(',');
  return `{${inner}}`;
}
