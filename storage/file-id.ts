import { randomBytes } from 'node:crypto';

/** 128 random bits, base64url without padding: 22 characters of [A-Za-z0-9_-]. */
export function newFileId(): string {
  return randomBytes(16).toString('base64url');
}

const FILE_ID = /^[A-Za-z0-9_-]{22}$/;

/** Only ids of the shape we make can name a file; anything else (`..`, `%00`, `a/b`) is unknown. */
export function isFileId(text: string): boolean {
  return FILE_ID.test(text);
}
