import { SluiceError } from '../lib/errors.js';
import type { Store } from '../storage/store.js';
import type { UploadStore } from '../storage/uploads.js';

const METHODS = ['createUpload', 'getUpload', 'interruptUpload', 'appendUpload', 'concatenateUploads', 'deleteUpload', 'listUploads', 'expireUploads'] as const;

/** 501: the store has no resumable uploads (STORE=s3 until issue 14). */
export class ResumableUnsupportedError extends SluiceError {
  constructor() {
    super('NOT_IMPLEMENTED', 'Resumable uploads are not available on this store yet (STORE=s3); use POST /upload', 501);
  }
}

/** The store's resumable-upload half, or a 501 when it has none. */
export function uploadStoreOf(store: Store): UploadStore {
  const candidate = store as Store & Partial<UploadStore>;
  for (const name of METHODS) if (typeof candidate[name] !== 'function') throw new ResumableUnsupportedError();
  return candidate as Store & UploadStore;
}
