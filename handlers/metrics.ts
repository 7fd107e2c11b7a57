import type { RequestContext } from '../lib/context.js';

/** `GET /metrics`: Prometheus text exposition format. */
export async function handleMetrics({ res, metrics }: RequestContext): Promise<void> {
  const body = await metrics.render();
  res.writeHead(200, {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
