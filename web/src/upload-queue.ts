/** Uploads run a few at a time; the rest wait their turn in the order they were picked. */
import type { UploadTask } from './upload-task.js';

/** Files uploading at once. Browsers open at most 6 connections per origin; this leaves some for the rest of the page. */
export const MAX_ACTIVE_UPLOADS = 3;

export class UploadQueue {
  private readonly tasks: UploadTask[] = [];
  private readonly active = new Set<UploadTask>();

  add(task: UploadTask): void {
    this.tasks.push(task);
    // A resumed (paused, failed) task is waiting again: start it when a slot is free.
    task.onChange(() => this.pump());
    this.pump();
  }

  /** A task for this file that has not finished, if any (the same file picked twice). */
  unfinished(fingerprint: (file: File) => string, file: File): UploadTask | undefined {
    const wanted = fingerprint(file);
    return this.tasks.find((t) => t.state !== 'done' && t.state !== 'cancelled' && fingerprint(t.file) === wanted);
  }

  /** Each retrying task tries again now (the browser is back online). */
  retryNow(): void {
    for (const task of this.active) task.retryNow();
  }

  private pump(): void {
    while (this.active.size < MAX_ACTIVE_UPLOADS) {
      const next = this.tasks.find((t) => t.state === 'waiting' && !this.active.has(t));
      if (next === undefined) return;
      this.active.add(next);
      void next.run().finally(() => {
        this.active.delete(next);
        this.pump();
      });
    }
  }
}
