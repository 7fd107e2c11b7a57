/**
 * The row of one transfer (an upload, or a fetch job): its name as text, a progress bar with its
 * value, bytes of total, rate and time left, a status line (role=status, read out by screen
 * readers), its buttons, and once stored the file's sha256 and a link to /files/<id>.
 */
import { el, fileLink, uniqueId } from './dom.js';
import { formatBytes, formatDuration, formatRate } from './format.js';

export interface Progress {
  readonly done: number;
  /** Null while unknown (a fetch whose origin sent no length). */
  readonly total: number | null;
  readonly bytesPerSecond: number | null;
  readonly secondsLeft: number | null;
}

export class TransferRow {
  readonly element: HTMLLIElement;
  private readonly bar: HTMLProgressElement;
  private readonly figures: HTMLParagraphElement;
  private readonly statusLine: HTMLParagraphElement;
  private readonly result: HTMLDivElement;
  private readonly actions: HTMLDivElement;
  private readonly buttons = new Map<string, HTMLButtonElement>();

  constructor(readonly name: string) {
    const nameId = uniqueId('transfer-name');
    this.bar = el('progress', { max: '1', value: '0', 'aria-labelledby': nameId });
    this.figures = el('p', { class: 'figures' });
    this.statusLine = el('p', { class: 'status', role: 'status', tabindex: '-1' });
    this.result = el('div', { class: 'result', hidden: '' });
    this.actions = el('div', { class: 'actions' });
    this.element = el('li', { class: 'transfer' }, el('p', { class: 'name', id: nameId }, name), this.bar, this.figures, this.statusLine, this.result, this.actions);
  }

  /** A button labelled `text` (and, for screen readers, `text name`), shown or hidden by `show`. */
  addButton(key: string, text: string, onClick: () => void): HTMLButtonElement {
    const button = el('button', { type: 'button', 'aria-label': `${text} ${this.name}` }, text);
    button.addEventListener('click', onClick);
    this.buttons.set(key, button);
    this.actions.append(button);
    return button;
  }

  /**
   * Shows the buttons named, hides the others. A keyboard user whose button goes (Pause becoming
   * Resume) is moved to the first one left, not dropped to the top of the page.
   */
  show(...keys: string[]): void {
    const focused = [...this.buttons.values()].find((b) => b === document.activeElement);
    for (const [key, button] of this.buttons) button.hidden = !keys.includes(key);
    if (focused?.hidden === true) {
      const next = [...this.buttons.values()].find((b) => !b.hidden);
      if (next !== undefined) next.focus();
      else this.statusLine.focus();
    }
  }

  setProgress(p: Progress): void {
    if (p.total !== null && p.total > 0) {
      this.bar.max = p.total;
      this.bar.value = Math.min(p.done, p.total);
    } else if (p.total === 0) {
      this.bar.max = 1;
      this.bar.value = 1;
    } else {
      this.bar.removeAttribute('value'); // indeterminate
    }
    const parts = [p.total === null ? formatBytes(p.done) : `${formatBytes(p.done)} of ${formatBytes(p.total)}`];
    if (p.bytesPerSecond !== null) parts.push(formatRate(p.bytesPerSecond));
    if (p.secondsLeft !== null && Number.isFinite(p.secondsLeft)) parts.push(`${formatDuration(p.secondsLeft)} left`);
    this.figures.textContent = parts.join(' · ');
  }

  setStatus(text: string): void {
    // Unchanged text is not set again, so screen readers do not repeat it.
    if (this.statusLine.textContent !== text) this.statusLine.textContent = text;
  }

  /** The stored file: its sha256 and a link to it. */
  setStored(id: string, sha256: string | null): void {
    if (!this.result.hidden) return;
    this.result.replaceChildren(
      el('p', {}, 'sha256 ', el('code', { class: 'sha256' }, sha256 ?? 'unknown')),
      el('p', {}, fileLink(id, `/files/${id}`, `Download ${this.name}`)),
    );
    this.result.hidden = false;
  }

  hideProgress(): void {
    this.bar.hidden = true;
    this.figures.hidden = true;
  }
}
