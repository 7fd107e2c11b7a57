import type { Config } from '../lib/config.js';
import type { ParserOptions } from '../multipart/parser.js';

/** The parser limits that the MAX_* settings stand for. */
export function parserOptions(config: Config, boundary: string): ParserOptions {
  return {
    boundary,
    maxPartHeaderBytes: config.maxPartHeaderBytes,
    maxFiles: config.maxFiles,
    maxFields: config.maxFields,
    maxParts: config.maxFiles + config.maxFields,
    maxFieldBytes: config.maxFieldBytes,
    maxFileBytes: config.maxFileBytes,
  };
}
