import type { RequestContext } from '../lib/context.js';
import { sendJson } from '../lib/respond.js';

/** `GET /healthz`: the process is up and serving. No auth, no store round trip. */
export async function handleHealth({ res }: RequestContext): Promise<void> {
  sendJson(res, 200, { status: 'ok' });
}
