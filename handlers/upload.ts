import type { RequestContext } from '../lib/context.js';
import { InternalError } from '../lib/errors.js';

// Placeholder until the handler lands.
export async function handleUpload(_ctx: RequestContext): Promise<void> {
  throw new InternalError('not implemented yet');
}
