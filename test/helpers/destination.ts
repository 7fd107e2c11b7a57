import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import busboy from 'busboy';
import { freePort } from './ports.js';

/** One request a destination received, as it went. */
export interface SeenRequest {
  readonly headers: IncomingHttpHeaders;
  /** Body bytes the handler has read so far. */
  bytes: number;
  /**
   * 'complete' once the whole body arrived; 'aborted' if the connection broke first. A request
   * nobody reads never learns that its connection went: Node does not watch a paused socket.
   */
  readonly outcome: Promise<'complete' | 'aborted'>;
  /** Starts reading (and dropping) the body, so that a closed connection shows. */
  drain(): void;
}

export interface Destination {
  readonly url: string;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

export type DestinationHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void | Promise<void>;

/** A part as the destination's busboy read it. */
export interface ReportedPart {
  readonly name: string;
  readonly filename: string | null;
  readonly type: string;
  readonly size: number;
  readonly sha256: string;
}

/** A proxy destination on 127.0.0.1:<any port>, each request handled by `handler`. */
export async function startDestination(handler: DestinationHandler): Promise<Destination> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const entry: SeenRequest = {
      headers: req.headers,
      bytes: 0,
      outcome: new Promise((resolve) => {
        req.once('end', () => resolve('complete'));
        req.once('close', () => resolve(req.complete ? 'complete' : 'aborted'));
        // After an early answer Node detaches the request from its socket: no 'close' comes
        // when the connection then goes, so watch the socket itself.
        req.socket.once('close', () => resolve(req.complete ? 'complete' : 'aborted'));
      }),
      drain: () => void req.resume(),
    };
    seen.push(entry);
    req.on('error', () => {}); // an aborted request is an outcome here, not a crash
    void Promise.resolve(handler(req, res, entry)).catch(() => res.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/inbox?from=sluice`,
    seen,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/**
 * A destination below HTTP: `onConnection` gets each raw socket (to answer with bytes that are
 * not HTTP, say). Its URL's path is `/`.
 */
export async function startTcpDestination(onConnection: (socket: Socket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A URL on which nothing listens: the port was just free. */
export async function closedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}/`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * Reads a multipart body with busboy (an independent parser, not ours): each part's name,
 * filename, type, size and sha256, in order.
 */
export async function busboyParts(body: Readable | Iterable<Buffer>, contentType: string): Promise<ReportedPart[]> {
  const parts: ReportedPart[] = [];
  const pending: Array<Promise<void>> = [];
  const bb = busboy({ headers: { 'content-type': contentType }, defParamCharset: 'utf8', preservePath: true, limits: { fieldNameSize: 1 << 20, fieldSize: 1 << 24 } });
  bb.on('field', (name, value, info) => {
    const bytes = Buffer.from(value, 'utf8');
    parts.push({ name, filename: null, type: info.mimeType, size: bytes.length, sha256: sha256(bytes) });
  });
  bb.on('file', (name, stream, info) => {
    const index = parts.length;
    parts.push({ name, filename: info.filename ?? null, type: info.mimeType, size: -1, sha256: '' });
    pending.push(
      (async () => {
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          hash.update(chunk);
          size += chunk.length;
        }
        parts[index] = { ...(parts[index] as ReportedPart), size, sha256: hash.digest('hex') };
      })(),
    );
  });
  const closed = once(bb, 'close');
  (body instanceof Readable ? body : Readable.from(body)).pipe(bb);
  await closed;
  await Promise.all(pending);
  return parts;
}

/** Parses the body with busboy (not our parser) and answers 200 `{ parts, headers }`. */
export const reportParts: DestinationHandler = (req, res, seen) => {
  req.on('data', (chunk: Buffer) => (seen.bytes += chunk.length));
  busboyParts(req, req.headers['content-type'] ?? '').then(
    (parts) => sendJson(res, 200, { parts, headers: req.headers }),
    (err: Error) => sendJson(res, 400, { error: err.message }),
  );
};

/** Hashes the raw body and answers 200 `{ size, sha256, headers }`, with hop-by-hop headers of its own. */
export const reportRaw: DestinationHandler = async (req, res, seen) => {
  const hash = createHash('sha256');
  for await (const chunk of req as AsyncIterable<Buffer>) {
    hash.update(chunk);
    seen.bytes += chunk.length;
  }
  sendJson(
    res,
    201,
    { size: seen.bytes, sha256: hash.digest('hex'), headers: req.headers },
    {
      // Hop-by-hop (RFC 9110 7.6.1): none of these may reach the client.
      connection: 'keep-alive, x-hop-secret',
      'keep-alive': 'timeout=99',
      'x-hop-secret': 'not for the client',
      'proxy-authenticate': 'Basic realm="dest"',
      'x-request-id': 'destination-made-this-up',
      // End to end: these must.
      'x-end-to-end': 'yes',
      'cache-control': 'no-cache',
    },
  );
};

/** Reads the body at about `bytesPerSecond`, then answers 200 `{ size, sha256 }`. */
export function readSlowly(bytesPerSecond: number): DestinationHandler {
  return async (req, res, seen) => {
    const started = Date.now();
    const hash = createHash('sha256');
    for await (const chunk of req as AsyncIterable<Buffer>) {
      hash.update(chunk);
      seen.bytes += chunk.length;
      const due = started + (seen.bytes / bytesPerSecond) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    }
    sendJson(res, 200, { size: seen.bytes, sha256: hash.digest('hex') });
  };
}

/** Answers `status` at once, before reading any of the body (its own size limit, say). */
export function answerEarly(status: number): DestinationHandler {
  return (_req, res) => sendJson(res, status, { error: 'too large for the destination' }, { 'x-destination': 'early' });
}

/** Reads `bytes` of the body, then resets the connection (RST, not a clean close). */
export function resetAfter(bytes: number): DestinationHandler {
  return (req, _res, seen) => {
    req.on('data', (chunk: Buffer) => {
      seen.bytes += chunk.length;
      if (seen.bytes >= bytes) req.socket.resetAndDestroy();
    });
  };
}

/** Reads the whole body and never answers. */
export const neverAnswer: DestinationHandler = (req, _res, seen) => {
  req.on('data', (chunk: Buffer) => (seen.bytes += chunk.length));
};

/** Reads nothing and never answers. */
export const neverRead: DestinationHandler = () => {};

/** Answers with headers and the first bytes of a body, then stalls forever. */
export const stallMidAnswer: DestinationHandler = (req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000000' });
    res.write('the beginning of a long answer');
  });
};

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
