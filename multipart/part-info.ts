import { LimitExceededError, MalformedRequestError } from '../lib/errors.js';
import { dispositionFilename, dispositionParam, parseContentDisposition } from './content-disposition.js';
import type { PartInfo } from './events.js';

export interface PartCounts {
  parts: number;
  files: number;
  fields: number;
}

const FORM_DATA = { formData: true } as const;

interface CountLimits {
  readonly maxFiles: number;
  readonly maxFields: number;
}

/**
 * Turns a part's headers into its PartInfo (RFC 7578 4.2: `Content-Disposition: form-data;
 * name=...` is required) and counts it against the file and field limits.
 */
export function buildPartInfo(headers: Record<string, string>, counts: PartCounts, limits: CountLimits): PartInfo {
  const header = headers['content-disposition'];
  if (header === undefined) throw new MalformedRequestError('CONTENT_DISPOSITION_MISSING', 'A part has no Content-Disposition header');
  const disposition = parseContentDisposition(header, FORM_DATA);
  if (disposition === null) throw new MalformedRequestError('CONTENT_DISPOSITION_MALFORMED', 'A part has a malformed Content-Disposition header');
  if (disposition.type !== 'form-data') {
    throw new MalformedRequestError('CONTENT_DISPOSITION_MALFORMED', `A part's Content-Disposition is "${disposition.type}", not form-data`);
  }
  const name = dispositionParam(disposition, 'name', FORM_DATA);
  if (name === null) throw new MalformedRequestError('CONTENT_DISPOSITION_MALFORMED', 'A part has no name parameter');
  const filename = dispositionFilename(disposition, FORM_DATA);
  if (filename !== null) {
    counts.files += 1;
    if (counts.files > limits.maxFiles) throw new LimitExceededError('TOO_MANY_FILES', `More than ${limits.maxFiles} files`, limits.maxFiles);
  } else {
    counts.fields += 1;
    if (counts.fields > limits.maxFields) throw new LimitExceededError('TOO_MANY_FIELDS', `More than ${limits.maxFields} fields`, limits.maxFields);
  }
  // An empty Content-Type says nothing: the part is treated as if it sent none (as busboy does).
  const contentType = headers['content-type'];
  return { name, filename, contentType: contentType === undefined || contentType === '' ? null : contentType, headers };
}
