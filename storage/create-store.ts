import type { Config } from '../lib/config.js';
import { LocalStore } from './local-store.js';
import type { Store } from './store.js';

/** The store that `STORE` names: the local directory (default) or an S3-compatible bucket. */
export async function createStore(config: Config): Promise<Store> {
  if (config.store === 's3') {
    const { S3Store } = await import('./s3-store.js');
    return new S3Store(config.s3, { uploadExpiryMs: config.uploadExpiryMs });
  }
  return new LocalStore(config.dataDir, { fsync: config.fsync, directIo: config.directIo, uploadExpiryMs: config.uploadExpiryMs });
}
