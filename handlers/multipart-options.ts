import type { Config } from '../lib/config.js';
import type { ParserOptions } from '../multipart/parser.js';

/**
 * The parser limits that the MAX_* settings stand for. No part limit of its own: every part is
 * a file or a field, so MAX_FILES and MAX_FIELDS bound the parts, and the one that fires names
 * what was exceeded (a part limit of MAX_FILES + MAX_FIELDS fired on the delimiter, before the
 * part's headers said which it was). `maxFileBytes`: less than MAX_FILE_BYTES under a signed link.
 */
export function parserOptions(config: Config, boundary: string, maxFileBytes = config.maxFileBytes): ParserOptions {
  return {
    boundary,
    maxPartHeaderBytes: config.maxPartHeaderBytes,
    maxFiles: config.maxFiles,
    maxFields: config.maxFields,
    maxFieldBytes: config.maxFieldBytes,
    maxFileBytes,
  };
}
