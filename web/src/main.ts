/** The page: wires the file picker and drop target to the upload queue, the lists, the token prompt. */
import { onTokenAccepted } from './auth.js';
import { byId } from './dom.js';
import { setUpDownloads } from './downloads.js';
import { setUpFetchJobs } from './fetch-jobs.js';
import { FilesList } from './files-list.js';
import { fingerprintOf } from './fingerprints.js';
import { setUpTokenPrompt } from './token-prompt.js';
import { UploadQueue } from './upload-queue.js';
import { uploadRow } from './upload-row.js';
import { UploadTask } from './upload-task.js';

const queue = new UploadQueue();
const files = new FilesList();
const uploads = byId('uploads', HTMLUListElement);
const picker = byId('file-input', HTMLInputElement);
const notice = byId('upload-notice', HTMLParagraphElement);

function addFiles(list: FileList | null): void {
  const skipped: string[] = [];
  for (const file of list ?? []) {
    // The same file twice at once would race for one upload: the second pick is skipped.
    if (queue.unfinished(fingerprintOf, file) !== undefined) {
      skipped.push(file.name);
      continue;
    }
    const task = new UploadTask(file);
    uploads.prepend(uploadRow(task, () => void files.refresh()));
    queue.add(task);
  }
  notice.textContent = skipped.length === 0 ? '' : `Already uploading: ${skipped.join(', ')}`;
}

picker.addEventListener('change', () => {
  addFiles(picker.files);
  picker.value = ''; // picking the same file again (after a reload, to resume) fires change again
});

// Drop anywhere on the page. Only drags that carry files are taken (not text or links).
const carriesFiles = (event: DragEvent): boolean => event.dataTransfer?.types.includes('Files') ?? false;
let dragDepth = 0;
document.addEventListener('dragenter', (event) => {
  if (!carriesFiles(event)) return;
  dragDepth += 1;
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) document.body.classList.remove('dragging');
});
document.addEventListener('dragover', (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault(); // allows the drop
  if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('drop', (event) => {
  dragDepth = 0;
  document.body.classList.remove('dragging');
  if (!carriesFiles(event)) return;
  event.preventDefault(); // or the browser opens the file in place of the page
  addFiles(event.dataTransfer?.files ?? null);
});

// Back online: uploads waiting out a backoff try again now.
window.addEventListener('online', () => queue.retryNow());

setUpTokenPrompt();
onTokenAccepted(() => void files.refresh());
setUpDownloads((message) => {
  byId('files-error', HTMLParagraphElement).textContent = message;
});
setUpFetchJobs(() => void files.refresh());
byId('refresh-files', HTMLButtonElement).addEventListener('click', () => void files.refresh());
void files.refresh();
