/** POST /proxy to a local destination, fast (proxy) or slow (proxy-slow): parser + encoder + outbound request. */
import type { BodySpec } from '../lib/multipart-body.js';
import type { RowPlan } from '../lib/types.js';
import { bodyLength, expectDelivered, uploadTo } from './common.js';

/** `rate` (bytes/s) > 0 makes the destination read slowly (proxy-slow). */
export function proxyRow(name: string, spec: BodySpec, rate: number): RowPlan {
  return {
    name,
    group: 'sluice',
    description:
      rate > 0
        ? `POST /proxy, multipart, destination reading at ${(rate / 2 ** 20).toFixed(0)} MiB/s`
        : 'POST /proxy, multipart, to a local destination that discards',
    bytes: bodyLength(spec),
    ratioTo: [rate > 0 ? 'busboy-proxy-slow' : 'busboy-proxy'],
    helpers: [{ script: 'helpers/sink.js', env: rate > 0 ? { RATE_BYTES_PER_SEC: String(rate) } : {} }],
    server: { kind: 'sluice', env: ([sink]) => ({ PROXY_TARGET: `http://127.0.0.1:${sink}/sink` }) },
    transfer: uploadTo('/proxy', spec),
    validate: (r) => expectDelivered(r, spec.fileBytes),
  };
}
