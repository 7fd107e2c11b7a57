/**
 * A tiny HTTP load balancer for tests (not a product feature): each request goes to the next
 * backend in turn, so a client's requests alternate between sluice instances. It can drop the
 * connection when the request bytes it has passed (bodies, all requests together) reach given
 * offsets, take a backend out of the rotation, and tell a test how far each request's body got
 * (to kill an instance mid-PATCH). Like a real balancer it sends a request that never reached a
 * backend (connection refused: the instance is dead) to the next one; a request whose body was
 * already flowing is cut instead, and the client resumes.
 */
import { once } from 'node:events';
import { Agent, createServer, request, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RelayedRequest {
  readonly method: string;
  readonly path: string;
  readonly backend: number;
  readonly headers: IncomingHttpHeaders;
  /** The answer's status and Upload-Offset, once it came (null: cut or failed before). */
  status: number | null;
  uploadOffset: number | null;
}

export interface RoundRobinRelay {
  readonly url: string;
  readonly requests: RelayedRequest[];
  /** Body bytes passed upstream so far, all requests together. */
  bytesUp(): number;
  cutsLeft(): number;
  /** Takes backend `index` out of the rotation (it was killed). */
  remove(index: number): void;
  /** Called as a request's body flows: which backend, and how many of its body bytes so far. */
  onBody: ((backend: number, bytes: number, req: RelayedRequest) => void) | null;
  close(): Promise<void>;
}

/** Headers that are the connection's, not the request's (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export async function startRoundRobinRelay(backends: readonly string[], cutAt: readonly number[] = []): Promise<RoundRobinRelay> {
  const targets = backends.map((b) => new URL(b));
  const live = new Set(targets.map((_, i) => i));
  const cuts = [...cutAt].sort((a, b) => a - b);
  const agent = new Agent({ keepAlive: true });
  const requests: RelayedRequest[] = [];
  const sockets = new Set<Socket>();
  let next = 0;
  let up = 0;

  const pick = (): number => {
    const order = [...live].sort((a, b) => a - b);
    if (order.length === 0) throw new Error('no live backend');
    const index = order[next % order.length] as number;
    next += 1;
    return index;
  };

  const relay: RoundRobinRelay = {
    url: '',
    requests,
    bytesUp: () => up,
    cutsLeft: () => cuts.length,
    remove: (index) => void live.delete(index),
    onBody: null,
    close: async () => {
      for (const s of sockets) s.destroy();
      agent.destroy();
      server.close();
      await once(server, 'close');
    },
  };

  /** One request: to a backend, again to the next one while none was reached and no body byte sent. */
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    let upstream: ClientRequest;
    let seen: RelayedRequest;
    let sent = 0;
    let ended = false;
    const drop = (): void => {
      upstream.destroy();
      req.socket.destroy();
    };
    const open = (tries: number): void => {
      const backend = pick();
      const target = targets[backend] as URL;
      seen = { method: req.method ?? '', path: req.url ?? '', backend, headers: req.headers, status: null, uploadOffset: null };
      requests.push(seen);
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
      const attempt = request({ agent, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers });
      upstream = attempt;
      attempt.on('error', (err: NodeJS.ErrnoException) => {
        if (attempt !== upstream) return;
        if (err.code === 'ECONNREFUSED' && sent === 0 && tries < targets.length) {
          live.delete(backend);
          requests.pop();
          open(tries + 1);
          return;
        }
        drop();
      });
      attempt.on('response', (answer) => {
        seen.status = answer.statusCode ?? 0;
        const offset = answer.headers['upload-offset'];
        seen.uploadOffset = typeof offset === 'string' ? Number(offset) : null;
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
        res.writeHead(answer.statusCode ?? 502, out);
        answer.pipe(res);
        answer.on('error', drop);
      });
      if (ended) attempt.end();
    };
    req.on('data', (chunk: Buffer) => {
      const cut = cuts[0];
      if (cut !== undefined && up + chunk.length >= cut) {
        cuts.shift();
        const keep = cut - up;
        up += keep;
        sent += keep;
        // Pass what came before the cut, then drop both sides as a broken network would.
        if (keep > 0) upstream.write(chunk.subarray(0, keep), drop);
        else drop();
        return;
      }
      up += chunk.length;
      sent += chunk.length;
      if (!upstream.write(chunk)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
      relay.onBody?.(seen.backend, sent, seen);
    });
    req.on('end', () => {
      ended = true;
      upstream.end();
    });
    req.on('error', drop);
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    open(1);
  };

  const server: Server = createServer((req, res) => {
    try {
      forward(req, res);
    } catch {
      req.socket.destroy();
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  (relay as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return relay;
}
