import type { S3Config } from '../lib/config.js';
import { LocalStore } from './local-store.js';

// Placeholder until the S3 store lands (issue 5).
export class S3Store extends LocalStore {
  constructor(_config: S3Config) {
    super('/nonexistent');
    throw new Error('STORE=s3 is not implemented yet');
  }
}
