/** The stored files (`GET /files`): name, size, date, sha256, a download link, and Delete (after asking). */
import { apiFetch, apiJson, errorOf, type FileRecord } from './api.js';
import { byId, el, fileLink } from './dom.js';
import { formatBytes, formatDate } from './format.js';

export class FilesList {
  private readonly list = byId('files', HTMLUListElement);
  private readonly status = byId('files-status', HTMLParagraphElement);
  private readonly alert = byId('files-error', HTMLParagraphElement);
  private loading: Promise<void> | null = null;
  private again = false;

  /** Reloads the list; calls made while one load runs are folded into one more load after it. */
  refresh(): Promise<void> {
    if (this.loading !== null) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.load().finally(() => {
      this.loading = null;
      if (this.again) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    try {
      const { files } = await apiJson<{ files: FileRecord[] }>('/files');
      // Newest first: what was just uploaded is at the top.
      const rows = [...files].reverse().map((f) => this.row(f));
      this.list.replaceChildren(...rows);
      this.status.textContent = files.length === 0 ? 'No files stored yet.' : `${files.length} file${files.length === 1 ? '' : 's'} stored.`;
      this.alert.textContent = '';
    } catch (err) {
      // 401 asks for the token (auth.ts); the list loads again once one is accepted.
      if ((err as { status?: number }).status === 401) this.status.textContent = 'A token is needed to list the files.';
      else this.alert.textContent = `Could not list the files: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  private row(file: FileRecord): HTMLLIElement {
    const name = file.filename ?? file.id;
    const remove = el('button', { type: 'button', 'aria-label': `Delete ${name}` }, 'Delete');
    remove.addEventListener('click', () => void this.remove(file, name, remove));
    return el(
      'li',
      { class: 'file', 'data-id': file.id },
      el('p', { class: 'name' }, name),
      el('p', { class: 'meta' }, `${formatBytes(file.size)} · ${formatDate(file.created)}`),
      el('p', {}, 'sha256 ', el('code', { class: 'sha256' }, file.sha256)),
      el('div', { class: 'actions' }, fileLink(file.id, 'Download', `Download ${name}`), remove),
    );
  }

  private async remove(file: FileRecord, name: string, button: HTMLButtonElement): Promise<void> {
    if (!window.confirm(`Delete “${name}” (${formatBytes(file.size)})? This cannot be undone.`)) return;
    button.disabled = true;
    let deleted = false;
    try {
      const res = await apiFetch(`/files/${encodeURIComponent(file.id)}`, { method: 'DELETE' });
      if (res.status !== 204 && res.status !== 404) throw await errorOf(res);
      deleted = true;
    } catch (err) {
      this.alert.textContent = `Could not delete ${name}: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      button.disabled = false;
    }
    await this.refresh();
    if (deleted) this.status.textContent = `Deleted ${name}. ${this.status.textContent ?? ''}`;
  }
}
