/** GET /fetch?url= from a local origin: the download path through the SSRF-checked client. */
import { download } from '../lib/clients.js';
import type { RowPlan } from '../lib/types.js';
import { expectDownloaded } from './common.js';

export function fetchRow(name: string, bytes: number): RowPlan {
  return {
    name,
    group: 'sluice',
    description: 'GET /fetch?url= from a local origin, curl downloading',
    bytes,
    ratioTo: ['raw-relay', 'origin-direct'],
    helpers: [{ script: 'helpers/origin.js', env: {} }],
    // The origin is on 127.0.0.1, which the SSRF guard refuses unless allowed.
    server: { kind: 'sluice', env: () => ({ FETCH_ALLOW: '127.0.0.1' }) },
    transfer: (a) => {
      const origin = `http://127.0.0.1:${a.helperPorts[0]}/blob?bytes=${bytes}`;
      return download(`http://127.0.0.1:${a.port}/fetch?url=${encodeURIComponent(origin)}`, a.ctx.timeoutFor(bytes));
    },
    validate: (r) => expectDownloaded(r, bytes),
  };
}
