/**
 * A TCP relay between a client and the server that drops the connection when the bytes it has
 * passed upstream (all connections together) reach each of the given offsets: the flaky network
 * a resumable upload must survive. It also reads the request heads it passes (bodies framed by
 * Content-Length), so a test can see what the client did: how many creations, which offsets.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface CuttingRelay {
  readonly url: string;
  /** Bytes passed upstream, heads and bodies, across every connection. */
  readonly bytesUp: () => number;
  /** Cuts still to come. */
  readonly cutsLeft: () => number;
  /** Request heads seen, in order. */
  readonly requests: SeenRequest[];
  /** Times at which a cut happened (ms, Date.now()). */
  readonly cutTimes: number[];
  close(): Promise<void>;
}

/** `cutAt`: upstream byte counts at which to drop whatever connection carries that byte. */
export async function startCuttingRelay(target: string, cutAt: readonly number[]): Promise<CuttingRelay> {
  const { hostname, port } = new URL(target);
  const cuts = [...cutAt].sort((a, b) => a - b);
  let up = 0;
  const requests: SeenRequest[] = [];
  const cutTimes: number[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    const upstream = connect({ host: hostname, port: Number(port) });
    sockets.add(client).add(upstream);
    const heads = new HeadReader(requests);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      const next = cuts[0];
      if (next !== undefined && up + chunk.length >= next) {
        const keep = next - up;
        cuts.shift();
        up += keep;
        cutTimes.push(Date.now());
        const piece = chunk.subarray(0, keep);
        heads.push(piece);
        // Pass what came before the cut, then drop both sides as a broken network would.
        if (piece.length > 0) upstream.write(piece, drop);
        else drop();
        return;
      }
      up += chunk.length;
      heads.push(chunk);
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', () => (sockets.delete(client), upstream.destroy()));
    upstream.on('close', () => (sockets.delete(upstream), client.destroy()));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const relayPort = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${relayPort}`,
    bytesUp: () => up,
    cutsLeft: () => cuts.length,
    requests,
    cutTimes,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Reads request heads out of one connection's upstream bytes, skipping Content-Length bodies. */
class HeadReader {
  private buffered = Buffer.alloc(0);
  private bodyLeft = 0;
  private lost = false;
  constructor(private readonly out: SeenRequest[]) {}

  push(chunk: Buffer): void {
    if (this.lost) return;
    let data = chunk;
    while (data.length > 0) {
      if (this.bodyLeft > 0) {
        const skip = Math.min(this.bodyLeft, data.length);
        this.bodyLeft -= skip;
        data = data.subarray(skip);
        continue;
      }
      this.buffered = Buffer.concat([this.buffered, data]);
      data = Buffer.alloc(0);
      const end = this.buffered.indexOf('\r\n\r\n');
      if (end === -1) {
        if (this.buffered.length > 64 * 1024) this.lost = true;
        return;
      }
      const lines = this.buffered.toString('latin1', 0, end).split('\r\n');
      const [method = '', path = ''] = (lines[0] ?? '').split(' ');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      this.out.push({ method, path, headers });
      // Chunked bodies are not followed; later heads on this connection are then not read.
      if (headers['transfer-encoding'] !== undefined) this.lost = true;
      this.bodyLeft = Number(headers['content-length'] ?? 0);
      data = this.buffered.subarray(end + 4);
      this.buffered = Buffer.alloc(0);
    }
  }
}
