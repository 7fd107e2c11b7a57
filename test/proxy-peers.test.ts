/**
 * POST /proxy against real multipart/form-data receivers: each destination reads the same
 * client body twice, once sent to it directly and once through sluice, and must read the same
 * parts both times (names, filenames, types, order, sizes, sha256 of every value and file).
 *
 * Peers: the WHATWG parser (Node's `Response#formData`, undici's code) and busboy always; PHP's
 * built-in server (`php -S`, `$_POST`/`$_FILES`) and Python's `email` package when `php` and
 * `python3` are installed, skipped with a printed reason otherwise. The client bodies are what
 * browsers and curl send (built by Node's FormData), so nothing in them is ours to normalise.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { busboyParts } from './helpers/destination.js';
import { freePort } from './helpers/ports.js';
import { startServer, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;

// ---- client bodies ------------------------------------------------------------------------------

interface ClientBody {
  readonly what: string;
  readonly contentType: string;
  readonly body: Buffer;
}

/** What a browser's FormData sends (Node's FormData is the WHATWG one), as bytes and their type. */
async function formDataBody(what: string, fill: (fd: FormData) => void): Promise<ClientBody> {
  const fd = new FormData();
  fill(fd);
  const res = new Response(fd);
  return { what, contentType: res.headers.get('content-type') as string, body: Buffer.from(await res.arrayBuffer()) };
}

const bigFile = randomBytes(8 * MiB + 3);
const clientForm = (what: string, fill: (fd: FormData) => void): { what: string; fill: (fd: FormData) => void } => ({ what, fill });

const BODIES: ReadonlyArray<{ readonly what: string; readonly fill: (fd: FormData) => void }> = [
  clientForm('fields and files with non-ASCII, quotes, CR and LF in names and filenames', (fd) => {
    fd.append('title', 'Holiday photos');
    fd.append('légende ☀', 'crème brûlée, 日本語');
    fd.append('say "hi"', 'line 1\r\nline 2');
    fd.append('photo', new Blob([randomBytes(70_000)], { type: 'image/png' }), 'a "b"\nc\rd.png');
    fd.append('notes', new Blob(['résumé'], { type: 'text/plain;charset=utf-8' }), 'résumé 😀 файл.txt');
    fd.append('tail', 'after the files');
  }),
  clientForm('an empty file input, an empty file, a type of its own', (fd) => {
    fd.append('nothing', new Blob([]), '');
    fd.append('empty', new Blob([], { type: 'application/octet-stream' }), 'empty.bin');
    fd.append('data', new Blob(['{"a":1}'], { type: 'application/json' }), 'a.json');
  }),
  clientForm('a directory upload (relative paths), `..`, a Windows path', (fd) => {
    fd.append('files[]', new Blob(['A'.repeat(100)], { type: 'image/jpeg' }), 'photos/2024/a.jpg');
    fd.append('files[]', new Blob(['B'.repeat(200)], { type: 'image/jpeg' }), 'photos/b.jpg');
    fd.append('dots', new Blob(['a file called ..'], { type: 'text/plain' }), '..');
    fd.append('win', new Blob(['w'], { type: 'text/plain' }), 'C:\\fakepath\\w.txt');
  }),
  clientForm('40 files and 40 fields, interleaved, in order', (fd) => {
    for (let i = 0; i < 40; i += 1) {
      fd.append(`field${i}`, `value ${i}`);
      fd.append(`file${i}`, new Blob([randomBytes(100 + i)], { type: 'application/octet-stream' }), `f${i}.bin`);
    }
  }),
  clientForm('an 8 MiB file between two fields', (fd) => {
    fd.append('before', 'a');
    fd.append('big', new Blob([bigFile], { type: 'application/x-weights' }), 'weights.safetensors');
    fd.append('after', 'b');
  }),
];

// ---- peers ---------------------------------------------------------------------------------------

interface Peer {
  readonly url: string;
  close(): Promise<void>;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A Node server whose handler turns a request into a JSON report. */
async function nodePeer(report: (req: import('node:http').IncomingMessage) => Promise<unknown>): Promise<Peer> {
  const server: Server = createServer((req, res) => {
    report(req).then(
      (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      (err: Error) => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message })),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Node's WHATWG multipart/form-data parser (undici), as `await request.formData()` in a fetch-style server. */
const whatwgPeer = (): Promise<Peer> =>
  nodePeer(async (req) => {
    const form = await new Response(req as unknown as ReadableStream, { headers: { 'content-type': req.headers['content-type'] ?? '' } }).formData();
    const parts: unknown[] = [];
    for (const [name, value] of form) {
      if (typeof value === 'string') parts.push({ name, value });
      else {
        const bytes = Buffer.from(await value.arrayBuffer());
        parts.push({ name, filename: value.name, type: value.type, size: bytes.length, sha256: sha256(bytes) });
      }
    }
    return { parts, headers: req.headers };
  });

const busboyPeer = (): Promise<Peer> => nodePeer(async (req) => ({ parts: await busboyParts(req, req.headers['content-type'] ?? ''), headers: req.headers }));

/** Starts `command`, which listens on `port`, and waits until it accepts connections. */
async function spawnPeer(command: string, args: readonly string[], port: number, cwd: string): Promise<Peer> {
  const child: ChildProcess = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = once(child, 'exit');
  for (let waited = 0; ; waited += 50) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(true)).on('error', () => resolve(false));
      s.unref();
      s.once('connect', () => s.destroy());
    });
    if (ok) break;
    if (child.exitCode !== null || waited > 10_000) {
      child.kill();
      throw new Error(`${command} did not start: ${stderr.trim()}`);
    }
    await sleep(50);
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      if (child.exitCode === null) {
        child.kill();
        await exited;
      }
    },
  };
}

const PHP_DUMP = String.raw`<?php
$files = [];
foreach ($_FILES as $key => $f) {
  $one = function ($name, $full, $type, $size, $error, $tmp) {
    return ['name' => $name, 'full_path' => $full, 'type' => $type, 'size' => $size, 'error' => $error, 'sha256' => $error === 0 ? hash_file('sha256', $tmp) : null];
  };
  if (is_array($f['name'])) {
    $files[$key] = [];
    foreach ($f['name'] as $i => $_) $files[$key][] = $one($f['name'][$i], $f['full_path'][$i] ?? null, $f['type'][$i], $f['size'][$i], $f['error'][$i], $f['tmp_name'][$i]);
  } else {
    $files[$key] = $one($f['name'], $f['full_path'] ?? null, $f['type'], $f['size'], $f['error'], $f['tmp_name']);
  }
}
$post = [];
foreach ($_POST as $k => $v) $post[] = [$k, $v];
header('Content-Type: application/json');
echo json_encode(['post' => $post, 'files' => $files, 'transferEncoding' => $_SERVER['HTTP_TRANSFER_ENCODING'] ?? null], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
`;

/** PHP's built-in web server; `$_POST` and `$_FILES` as PHP applications see them. */
async function phpPeer(dir: string): Promise<Peer> {
  await writeFile(join(dir, 'dump.php'), PHP_DUMP);
  const port = await freePort();
  const ini = ['-d', 'upload_max_filesize=64M', '-d', 'post_max_size=64M', '-d', 'max_file_uploads=200', '-d', `upload_tmp_dir=${dir}`];
  return spawnPeer('php', [...ini, '-S', `127.0.0.1:${port}`, join(dir, 'dump.php')], port, dir);
}

// http.server does not decode a chunked request body (it reads Content-Length only), so the
// script does; then Python's email package parses the multipart body, as many Python tools do.
const PYTHON_PEER = String.raw`
import sys, json, hashlib
from email.parser import BytesParser
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def body(self):
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''): pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get('Content-Length', '0')))
    def do_POST(self):
        data = self.body()
        msg = BytesParser(policy=policy.HTTP).parsebytes(b'Content-Type: ' + self.headers['Content-Type'].encode('latin1') + b'\r\n\r\n' + data)
        parts = []
        for p in msg.iter_parts():
            payload = p.get_payload(decode=True) or b''
            parts.append({'name': p.get_param('name', header='content-disposition'), 'filename': p.get_filename(), 'type': p.get_content_type(), 'size': len(payload), 'sha256': hashlib.sha256(payload).hexdigest()})
        out = json.dumps({'parts': parts, 'defects': [str(d) for d in msg.defects]}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args): pass

ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
`;

async function pythonPeer(dir: string): Promise<Peer> {
  await writeFile(join(dir, 'peer.py'), PYTHON_PEER);
  const port = await freePort();
  return spawnPeer('python3', [join(dir, 'peer.py'), String(port)], port, dir);
}

/** Why `command` cannot be used here, or false when it can. */
function missing(command: string, args: readonly string[]): string | false {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error !== undefined) return `${command} is not installed (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`;
  if (r.status !== 0) return `${command} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}`;
  return false;
}

const noPhp = missing('php', ['-r', 'echo PHP_VERSION;']);
const noPython = missing('python3', ['-c', 'import email.parser, http.server']);
if (noPhp !== false) process.stdout.write(`# proxy-peers.test.ts: skipping PHP: ${noPhp}\n`);
if (noPython !== false) process.stdout.write(`# proxy-peers.test.ts: skipping Python: ${noPython}\n`);

// ---- the comparison --------------------------------------------------------------------------

interface Answer {
  readonly status: number;
  readonly json: { headers?: IncomingHttpHeaders; transferEncoding?: string | null; [key: string]: unknown };
}

function postTo(url: string, body: ClientBody): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': body.contentType, 'content-length': body.body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Answer['json'] });
        } catch {
          reject(new Error(`not JSON (${res.statusCode}): ${text.slice(0, 300)}`));
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body.body);
  });
}

/** What a peer read, without what may differ between a direct request and a proxied one. */
function reading(answer: Answer): unknown {
  const { headers: _headers, transferEncoding: _te, ...rest } = answer.json;
  return { status: answer.status, ...rest };
}

const PEERS: ReadonlyArray<{ name: string; skip: string | false; start: (dir: string) => Promise<Peer> }> = [
  { name: 'WHATWG (Response#formData)', skip: false, start: whatwgPeer },
  { name: 'busboy', skip: false, start: busboyPeer },
  { name: "PHP's built-in server ($_POST, $_FILES)", skip: noPhp, start: phpPeer },
  { name: "Python's email package", skip: noPython, start: pythonPeer },
];

for (const p of PEERS) {
  describe(`POST /proxy to ${p.name}: the destination reads what it reads from the client itself`, { skip: p.skip }, () => {
    let dir: string;
    let peer: Peer;
    let sluice: TestServer;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sluice-peer-'));
      peer = await p.start(dir);
      sluice = await startServer({ PROXY_TARGET: peer.url });
    });
    after(async () => {
      await sluice?.close();
      await peer?.close();
      await rm(dir, { recursive: true, force: true });
    });

    for (const spec of BODIES) {
      test(spec.what, async () => {
        const body = await formDataBody(spec.what, spec.fill);
        const direct = await postTo(peer.url, body);
        assert.equal(direct.status, 200, JSON.stringify(direct.json));
        const proxied = await postTo(`${sluice.url}/proxy`, body);
        assert.deepEqual(reading(proxied), reading(direct), body.what);
        // Sent chunked, with our own boundary (what the peers that report headers saw).
        const seen = proxied.json.headers;
        if (seen !== undefined) {
          assert.equal(seen['transfer-encoding'], 'chunked');
          assert.match(String(seen['content-type']), /^multipart\/form-data; boundary=----sluice/);
        }
        if (proxied.json.transferEncoding !== undefined) assert.equal(proxied.json.transferEncoding, 'chunked');
      });
    }
  });
}
