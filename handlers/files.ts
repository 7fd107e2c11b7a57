import type { RequestContext } from '../lib/context.js';
import { InternalError } from '../lib/errors.js';

// Placeholder until the handler lands.
export async function handleGetFile(_ctx: RequestContext): Promise<void> {
  throw new InternalError('not implemented yet');
}

// Placeholder until the handler lands.
export async function handleListFiles(_ctx: RequestContext): Promise<void> {
  throw new InternalError('not implemented yet');
}

// Placeholder until the handler lands.
export async function handleDeleteFile(_ctx: RequestContext): Promise<void> {
  throw new InternalError('not implemented yet');
}
