/**
 * The URL box: `POST /fetches {url}` starts a server-side fetch job; its row follows
 * `GET /fetches/<id>` (state, bytes, total, bytesPerSecond) until it is done, failed or
 * cancelled, then shows the stored file like an upload. Cancel is `DELETE /fetches/<id>`.
 */
import { ApiError, apiFetch, apiJson, errorOf, type FileRecord } from './api.js';
import { byId } from './dom.js';
import { TransferRow } from './transfer-row.js';

/** How often a running job is asked for its progress. */
const POLL_MS = 1000;

interface FetchJob {
  readonly id: string;
  readonly url: string;
  readonly state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  readonly bytes: number;
  readonly total: number | null;
  readonly bytesPerSecond: number | null;
  readonly file?: FileRecord;
  readonly error?: { readonly code: string; readonly message: string };
}

const FINISHED = new Set(['done', 'failed', 'cancelled']);

export function setUpFetchJobs(onStored: () => void): void {
  const form = byId('fetch-form', HTMLFormElement);
  const input = byId('fetch-url', HTMLInputElement);
  const alert = byId('fetch-error', HTMLParagraphElement);
  const list = byId('fetches', HTMLUListElement);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const url = input.value.trim();
    if (url === '') return;
    alert.textContent = '';
    void start(url).then(
      (job) => {
        input.value = '';
        list.prepend(follow(job, onStored));
      },
      (err: unknown) => {
        alert.textContent =
          err instanceof ApiError && err.status === 404 && err.code === 'NOT_FOUND'
            ? 'This server does not run fetch jobs.'
            : `Could not start the fetch: ${err instanceof Error ? err.message : String(err)}`;
      },
    );
  });
}

function start(url: string): Promise<FetchJob> {
  return apiJson<FetchJob>('/fetches', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url }) }, [201, 202]);
}

/** A row that polls the job until it finishes. */
function follow(first: FetchJob, onStored: () => void): HTMLLIElement {
  const row = new TransferRow(first.url);
  row.element.classList.add('fetch');
  const path = `/fetches/${encodeURIComponent(first.id)}`;
  let finished = false;
  row.addButton('cancel', 'Cancel', () => {
    void apiFetch(path, { method: 'DELETE' }).then(async (res) => {
      if (!res.ok) throw await errorOf(res);
      await poll();
    }).catch((err: unknown) => row.setStatus(`Could not cancel: ${err instanceof Error ? err.message : String(err)}`));
  });

  const draw = (job: FetchJob): void => {
    row.element.dataset.state = job.state;
    const rate = job.state === 'running' ? job.bytesPerSecond : null;
    const left = rate !== null && rate > 0 && job.total !== null ? (job.total - job.bytes) / rate : null;
    row.setProgress({ done: job.bytes, total: job.total, bytesPerSecond: rate, secondsLeft: left });
    switch (job.state) {
      case 'queued':
        row.setStatus('Waiting for a free slot on the server');
        row.show('cancel');
        break;
      case 'running':
        row.setStatus('Fetching');
        row.show('cancel');
        break;
      case 'done':
        row.setStatus('Done');
        row.show();
        if (job.file !== undefined) row.setStored(job.file.id, job.file.sha256);
        break;
      case 'failed':
        row.setStatus(`Failed: ${job.error?.message ?? 'unknown error'}`);
        row.show();
        break;
      case 'cancelled':
        row.setStatus('Cancelled');
        row.show();
        row.hideProgress();
        break;
    }
  };

  let failures = 0;
  const poll = async (): Promise<void> => {
    try {
      const job = await apiJson<FetchJob>(path);
      failures = 0;
      draw(job);
      if (FINISHED.has(job.state) && !finished) {
        finished = true;
        if (job.state === 'done') onStored();
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        finished = true;
        row.setStatus('The server no longer has this job');
        row.show();
        return;
      }
      failures += 1;
      row.setStatus(err instanceof ApiError && err.status === 0 ? 'Offline, asking again' : `Could not read the job: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const loop = async (): Promise<void> => {
    while (!finished) {
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS * 2 ** failures, 30_000)));
      await poll();
    }
  };
  draw(first);
  if (FINISHED.has(first.state)) {
    finished = true;
    if (first.state === 'done') onStored();
  }
  void loop();
  return row.element;
}
