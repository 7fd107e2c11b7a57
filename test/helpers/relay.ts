/**
 * A TCP relay between a client (the browser) and a server that counts the bytes sent upstream,
 * can slow them to a given rate (so a test can act mid-upload), and can be cut: every connection
 * reset and new ones refused until it is restored, as when the network or the server goes away.
 */
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface Relay {
  /** `http://127.0.0.1:<port>`: where the browser goes. */
  readonly url: string;
  /** Bytes relayed from clients to the server so far. */
  readonly upstreamBytes: number;
  /** Resets every connection and refuses new ones (the port stops listening). */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  /** Bytes per second upstream, or null for no limit. */
  setRate(bytesPerSecond: number | null): void;
  /** Points new connections at another server port (a restarted server). */
  setTarget(port: number): void;
  close(): Promise<void>;
}

export async function startRelay(targetPort: number, bytesPerSecond: number | null = null): Promise<Relay> {
  let target = targetPort;
  let rate = bytesPerSecond;
  let upstreamBytes = 0;
  // The rate is kept over the whole time since it was last set: a debt is paid off by pausing.
  let rateStart = performance.now();
  let rateBytes = 0;
  const sockets = new Set<Socket>();
  let server: Server = createServer(onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;

  function onConnection(client: Socket): void {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    sockets.add(client);
    sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      upstreamBytes += chunk.length;
      rateBytes += chunk.length;
      const full = !upstream.write(chunk);
      const wait = rate === null ? 0 : (rateBytes / rate) * 1000 - (performance.now() - rateStart);
      if (full || wait > 0) {
        client.pause();
        const resume = (): void => {
          if (!client.destroyed) client.resume();
        };
        const afterWait = (): void => void (wait > 0 ? setTimeout(resume, wait) : resume());
        if (full) upstream.once('drain', afterWait);
        else afterWait();
      }
    });
    client.on('end', () => upstream.end());
  }

  return {
    url: `http://127.0.0.1:${port}`,
    get upstreamBytes() {
      return upstreamBytes;
    },
    async cut() {
      const closed = once(server, 'close');
      server.close();
      for (const s of sockets) s.resetAndDestroy();
      sockets.clear();
      await closed;
    },
    async restore() {
      server = createServer(onConnection);
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
    setRate(bytes) {
      rate = bytes;
      rateStart = performance.now();
      rateBytes = 0;
    },
    setTarget(p) {
      target = p;
    },
    async close() {
      for (const s of sockets) s.destroy();
      if (server.listening) {
        const closed = once(server, 'close');
        server.close();
        await closed;
      }
    },
  };
}
