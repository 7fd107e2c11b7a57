import { once } from 'node:events';
import { createServer } from 'node:net';

/** A port on 127.0.0.1 that nobody listened on a moment ago (the kernel's pick, then released). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  probe.close();
  await once(probe, 'close');
  return port;
}
