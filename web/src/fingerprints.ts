/**
 * Unfinished uploads by file, so that picking the same file after a reload resumes it: a
 * fingerprint of name, size and modification time → the upload's URL, in localStorage (the URL
 * is no secret: without the token it opens nothing).
 */

const KEY = 'sluice.uploads';

/** At most this many remembered uploads; the oldest go first (the server expires them anyway). */
const MAX_REMEMBERED = 200;

interface Remembered {
  readonly url: string;
  readonly at: number;
}

export function fingerprintOf(file: File): string {
  return JSON.stringify([file.name, file.size, file.lastModified]);
}

function readAll(): Record<string, Remembered> {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) ?? '{}') as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, Remembered>) : {};
  } catch {
    return {};
  }
}

function writeAll(all: Record<string, Remembered>): void {
  const entries = Object.entries(all).sort((a, b) => b[1].at - a[1].at).slice(0, MAX_REMEMBERED);
  try {
    localStorage.setItem(KEY, JSON.stringify(Object.fromEntries(entries)));
  } catch {
    // storage full or off: the upload still works, it just cannot resume after a reload
  }
}

/** The URL of an unfinished upload of this file, if one was started here. */
export function rememberedUpload(file: File): string | null {
  const entry = readAll()[fingerprintOf(file)];
  return typeof entry?.url === 'string' && new URL(entry.url, location.href).origin === location.origin ? entry.url : null;
}

export function rememberUpload(file: File, url: string): void {
  const all = readAll();
  all[fingerprintOf(file)] = { url, at: Date.now() };
  writeAll(all);
}

export function forgetUpload(file: File): void {
  const all = readAll();
  delete all[fingerprintOf(file)];
  writeAll(all);
}
