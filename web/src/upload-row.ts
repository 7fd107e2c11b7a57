/** An UploadTask shown as a TransferRow: Pause / Resume / Cancel, progress, and the stored file once done. */
import { TransferRow } from './transfer-row.js';
import type { UploadTask } from './upload-task.js';

/** Redraws at most this often: progress events come every few milliseconds. */
const REDRAW_MS = 100;

export function uploadRow(task: UploadTask, onStored: () => void): HTMLLIElement {
  const row = new TransferRow(task.file.name);
  row.element.classList.add('upload');
  row.addButton('pause', 'Pause', () => task.pause());
  const resume = row.addButton('resume', 'Resume', () => task.resume());
  row.addButton('cancel', 'Cancel', () => void task.cancel());

  let scheduled = false;
  let stored = false;
  const draw = (): void => {
    scheduled = false;
    row.element.dataset.state = task.state;
    row.setProgress({ done: task.sent, total: task.file.size, bytesPerSecond: task.bytesPerSecond, secondsLeft: task.secondsLeft });
    row.setStatus(task.status);
    resume.textContent = task.state === 'failed' ? 'Retry' : 'Resume';
    resume.setAttribute('aria-label', `${resume.textContent} ${task.file.name}`);
    switch (task.state) {
      case 'waiting':
      case 'running':
      case 'retrying':
        row.show('pause', 'cancel');
        break;
      case 'paused':
      case 'failed':
        row.show('resume', 'cancel');
        break;
      case 'done':
        row.show();
        if (task.fileId !== null) row.setStored(task.fileId, task.sha256);
        if (!stored) {
          stored = true;
          onStored();
        }
        break;
      case 'cancelled':
        row.show();
        row.hideProgress();
        break;
    }
  };
  task.onChange(() => {
    // State changes draw at once (tests and people see them); progress at most every REDRAW_MS.
    if (row.element.dataset.state !== task.state) return draw();
    if (!scheduled) {
      scheduled = true;
      setTimeout(draw, REDRAW_MS);
    }
  });
  draw();
  return row.element;
}
