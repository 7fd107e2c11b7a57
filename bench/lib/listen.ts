/** Start-up shared by the helper and baseline server processes. */
import type { Server } from 'node:http';

/** Listens on 127.0.0.1:$PORT (never any other address) and exits on SIGTERM. */
export function listenFromEnv(server: Server, name: string): void {
  const port = Number(process.env.PORT ?? '0');
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${name}: PORT must be set`);
  // No absolute request timeout: the biggest runs take minutes.
  server.requestTimeout = 0;
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

export function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
  return n;
}
