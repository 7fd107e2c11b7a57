import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SluiceError } from '../lib/errors.js';
import { classifyAddress, createGuardedLookup, isAllowedHost, type AddressClass } from '../net/ssrf.js';
import { sha256Of, startOrigin, type Origin } from './helpers/origin.js';
import { startServer, type TestServer } from './helpers/server.js';

interface AddressCase {
  readonly what: string;
  readonly address: string;
  readonly expected: AddressClass | null;
}

const ADDRESS_CASES: readonly AddressCase[] = [
  { what: 'IPv4 loopback', address: '127.0.0.1', expected: 'loopback' },
  { what: 'top of 127/8', address: '127.255.255.254', expected: 'loopback' },
  { what: 'RFC 1918 10/8', address: '10.1.2.3', expected: 'private' },
  { what: 'RFC 1918 172.16/12, low end', address: '172.16.0.1', expected: 'private' },
  { what: 'RFC 1918 172.16/12, high end', address: '172.31.255.255', expected: 'private' },
  { what: 'just past 172.16/12', address: '172.32.0.1', expected: null },
  { what: 'RFC 1918 192.168/16', address: '192.168.1.1', expected: 'private' },
  { what: 'CGNAT 100.64/10', address: '100.64.0.1', expected: 'private' },
  { what: 'CGNAT top', address: '100.127.255.255', expected: 'private' },
  { what: 'just past CGNAT', address: '100.128.0.1', expected: null },
  { what: 'cloud metadata address', address: '169.254.169.254', expected: 'link-local' },
  { what: 'unspecified', address: '0.0.0.0', expected: 'unspecified' },
  { what: '"this network" 0/8', address: '0.1.2.3', expected: 'unspecified' },
  { what: 'multicast', address: '224.0.0.1', expected: 'multicast' },
  { what: 'SSDP multicast', address: '239.255.255.250', expected: 'multicast' },
  { what: 'limited broadcast', address: '255.255.255.255', expected: 'broadcast' },
  { what: 'class E', address: '240.0.0.1', expected: 'reserved' },
  { what: 'TEST-NET-1', address: '192.0.2.1', expected: 'documentation' },
  { what: 'TEST-NET-2', address: '198.51.100.7', expected: 'documentation' },
  { what: 'TEST-NET-3', address: '203.0.113.9', expected: 'documentation' },
  { what: 'benchmarking', address: '198.18.0.1', expected: 'reserved' },
  { what: 'IETF protocol assignments (NAT64 discovery)', address: '192.0.0.170', expected: 'reserved' },
  { what: 'public IPv4', address: '8.8.8.8', expected: null },
  { what: 'another public IPv4', address: '93.184.216.34', expected: null },
  { what: 'IPv6 loopback', address: '::1', expected: 'loopback' },
  { what: 'IPv6 loopback, long form', address: '0:0:0:0:0:0:0:1', expected: 'loopback' },
  { what: 'IPv6 unspecified', address: '::', expected: 'unspecified' },
  { what: 'link-local', address: 'fe80::1', expected: 'link-local' },
  { what: 'link-local with a zone', address: 'fe80::1%eth0', expected: 'link-local' },
  { what: 'top of fe80::/10', address: 'febf::1', expected: 'link-local' },
  { what: 'unique-local fc00::/7 (fc)', address: 'fc00::1', expected: 'unique-local' },
  { what: 'unique-local fc00::/7 (fd)', address: 'fd12:3456::1', expected: 'unique-local' },
  { what: 'deprecated site-local', address: 'fec0::1', expected: 'private' },
  { what: 'IPv6 multicast', address: 'ff02::1', expected: 'multicast' },
  { what: 'IPv4-mapped loopback, dotted', address: '::ffff:127.0.0.1', expected: 'loopback' },
  { what: 'IPv4-mapped loopback, hex', address: '::ffff:7f00:1', expected: 'loopback' },
  { what: 'IPv4-mapped metadata, dotted', address: '::ffff:169.254.169.254', expected: 'link-local' },
  { what: 'IPv4-mapped metadata, hex', address: '::ffff:a9fe:a9fe', expected: 'link-local' },
  { what: 'IPv4-mapped private', address: '::ffff:10.0.0.1', expected: 'private' },
  { what: 'IPv4-mapped public', address: '::ffff:8.8.8.8', expected: null },
  { what: 'NAT64 of loopback, hex', address: '64:ff9b::7f00:1', expected: 'loopback' },
  { what: 'NAT64 of loopback, dotted', address: '64:ff9b::127.0.0.1', expected: 'loopback' },
  { what: 'NAT64 of metadata', address: '64:ff9b::a9fe:a9fe', expected: 'link-local' },
  { what: 'NAT64 of public', address: '64:ff9b::808:808', expected: null },
  { what: 'local-use NAT64', address: '64:ff9b:1::8.8.8.8', expected: 'private' },
  { what: '6to4 of loopback', address: '2002:7f00:1::1', expected: 'loopback' },
  { what: '6to4 of private', address: '2002:c0a8:101::1', expected: 'private' },
  { what: '6to4 of public', address: '2002:808:808::1', expected: null },
  { what: 'IPv4-compatible loopback, dotted', address: '::127.0.0.1', expected: 'loopback' },
  { what: 'IPv4-compatible loopback, hex', address: '::7f00:1', expected: 'loopback' },
  { what: 'IPv4-compatible public (deprecated form)', address: '::8.8.8.8', expected: 'reserved' },
  { what: 'IPv4-translated loopback (SIIT)', address: '::ffff:0:7f00:1', expected: 'loopback' },
  { what: 'IPv6 documentation', address: '2001:db8::1', expected: 'documentation' },
  { what: 'Teredo', address: '2001::1', expected: 'reserved' },
  { what: 'discard-only', address: '100::1', expected: 'reserved' },
  { what: 'outside 2000::/3', address: '4000::1', expected: 'reserved' },
  { what: 'public IPv6 (Cloudflare DNS)', address: '2606:4700:4700::1111', expected: null },
  { what: 'public IPv6 (Google DNS)', address: '2001:4860:4860::8888', expected: null },
  { what: 'bracketed URL form', address: '[::ffff:7f00:1]', expected: 'loopback' },
  { what: 'hex IPv4 is not canonical: fail closed', address: '0x7f.1', expected: 'unparsable' },
  { what: 'octal IPv4: fail closed', address: '017700000001', expected: 'unparsable' },
  { what: 'decimal IPv4: fail closed', address: '2130706433', expected: 'unparsable' },
  { what: 'short IPv4: fail closed', address: '127.1', expected: 'unparsable' },
  { what: 'leading zero octet: fail closed', address: '127.0.0.01', expected: 'unparsable' },
  { what: 'two :: in IPv6', address: '1::2::3', expected: 'unparsable' },
  { what: 'nine IPv6 groups', address: '1:2:3:4:5:6:7:8:9', expected: 'unparsable' },
  { what: 'dotted part not last', address: '1.2.3.4::', expected: 'unparsable' },
  { what: 'a name', address: 'localhost', expected: 'unparsable' },
];

describe('classifyAddress', () => {
  for (const c of ADDRESS_CASES) {
    test(`${c.what}: ${c.address} → ${c.expected ?? 'public'}`, () => {
      assert.equal(classifyAddress(c.address), c.expected);
    });
  }
});

describe('isAllowedHost', () => {
  const cases: ReadonlyArray<{ what: string; url: string; allow: string[]; expected: boolean }> = [
    { what: 'host entry, any port', url: 'http://127.0.0.1:9000/x', allow: ['127.0.0.1'], expected: true },
    { what: 'host:port entry, same port', url: 'http://files.internal:9000/', allow: ['files.internal:9000'], expected: true },
    { what: 'host:port entry, other port', url: 'http://files.internal:9001/', allow: ['files.internal:9000'], expected: false },
    { what: 'default port counts', url: 'https://files.internal/', allow: ['files.internal:443'], expected: true },
    { what: 'numeric form normalised by the URL parser', url: 'http://2130706433/', allow: ['127.0.0.1'], expected: true },
    { what: 'IPv6 with brackets', url: 'http://[::1]:8080/', allow: ['[::1]:8080'], expected: true },
    { what: 'IPv6 without brackets, no port', url: 'http://[::1]:8080/', allow: ['::1'], expected: true },
    { what: 'a name is not its address', url: 'http://localhost/', allow: ['127.0.0.1'], expected: false },
    { what: 'empty list', url: 'http://127.0.0.1/', allow: [], expected: false },
  ];
  for (const c of cases) {
    test(c.what, () => assert.equal(isAllowedHost(new URL(c.url), c.allow), c.expected));
  }
});

/** A resolver that answers with fixed addresses, as a rebinding DNS server would. */
function fakeResolver(addresses: readonly LookupAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all === true) callback(null, [...addresses]);
    else callback(null, (addresses[0] as LookupAddress).address, (addresses[0] as LookupAddress).family);
  };
}

function lookupOnce(lookup: LookupFunction, host: string, all: boolean): Promise<string | LookupAddress[]> {
  return new Promise((resolve, reject) => {
    lookup(host, { all }, (err, address) => (err ? reject(err) : resolve(address)));
  });
}

describe('createGuardedLookup', () => {
  const isForbidden = (err: unknown): boolean => err instanceof SluiceError && err.code === 'FORBIDDEN_ADDRESS' && err.status === 403;

  test('a public answer passes, single and all', async () => {
    const lookup = createGuardedLookup(fakeResolver([{ address: '93.184.216.34', family: 4 }]));
    assert.equal(await lookupOnce(lookup, 'example.test', false), '93.184.216.34');
    assert.deepEqual(await lookupOnce(lookup, 'example.test', true), [{ address: '93.184.216.34', family: 4 }]);
  });

  test('a private answer is refused', async () => {
    const lookup = createGuardedLookup(fakeResolver([{ address: '10.0.0.5', family: 4 }]));
    await assert.rejects(lookupOnce(lookup, 'rebind.test', false), isForbidden);
  });

  test('all: true with one bad address among good ones refuses the lot (rebinding)', async () => {
    const lookup = createGuardedLookup(
      fakeResolver([
        { address: '93.184.216.34', family: 4 },
        { address: '::ffff:169.254.169.254', family: 6 },
      ]),
    );
    await assert.rejects(lookupOnce(lookup, 'rebind.test', true), isForbidden);
  });

  test('the check runs at every lookup, so a name that changes its answer is caught', async () => {
    let calls = 0;
    const flipping: LookupFunction = (_h, _o, cb) => {
      calls += 1;
      cb(null, calls === 1 ? '93.184.216.34' : '127.0.0.1', 4);
    };
    const lookup = createGuardedLookup(flipping);
    assert.equal(await lookupOnce(lookup, 'flip.test', false), '93.184.216.34');
    await assert.rejects(lookupOnce(lookup, 'flip.test', false), isForbidden);
  });

  test('resolver errors pass through unchanged', async () => {
    const failing: LookupFunction = (_h, _o, cb) => cb(Object.assign(new Error('nope'), { code: 'ENOTFOUND' }), '');
    await assert.rejects(lookupOnce(createGuardedLookup(failing), 'missing.test', false), { code: 'ENOTFOUND' });
  });

  test('the real resolver: localhost is refused, single and all', async () => {
    const lookup = createGuardedLookup();
    await assert.rejects(lookupOnce(lookup, 'localhost', false), isForbidden);
    await assert.rejects(lookupOnce(lookup, 'localhost', true), isForbidden);
  });
});

interface Answer {
  readonly status: number;
  readonly json: { error?: { code: string; message: string } };
  readonly text: string;
}

async function getFetch(server: TestServer, target: string): Promise<Answer> {
  const res = await fetch(`${server.url}/fetch?url=${encodeURIComponent(target)}`);
  const text = await res.text();
  let json = {};
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    // a body, not an error answer
  }
  return { status: res.status, json, text };
}

describe('GET /fetch refuses what the guard refuses', () => {
  let origin: Origin;
  let server: TestServer;
  before(async () => {
    origin = await startOrigin();
    // No FETCH_ALLOW. A short timeout bounds the damage should a refusal ever fail to happen.
    server = await startServer({ FETCH_TIMEOUT_MS: '2000' });
  });
  after(async () => {
    await server.close();
    await origin.close();
  });

  // Forms of loopback aimed at the live origin's port: were the guard to let one through, the
  // answer would be the origin's 200, not a network error.
  const loopbackForms = (port: number): string[] => [
    `http://127.0.0.1:${port}/data`,
    `http://2130706433:${port}/data`,
    `http://0x7f.1:${port}/data`,
    `http://0x7f000001:${port}/data`,
    `http://017700000001:${port}/data`,
    `http://127.1:${port}/data`,
    `http://127.000.000.001:${port}/data`,
    `http://0177.0.0.1:${port}/data`,
    `http://127.0.0.1.:${port}/data`,
    `http://127.0.0.1%2e:${port}/data`,
    `http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460:${port}/data`,
    `http://[0:0:0:0:0:ffff:127.0.0.1]:${port}/data`,
    `http://[::1]:${port}/data`,
    `http://[::ffff:127.0.0.1]:${port}/data`,
    `http://[::ffff:7f00:1]:${port}/data`,
    `http://[64:ff9b::7f00:1]:${port}/data`,
    `http://[::127.0.0.1]:${port}/data`,
    `http://localhost:${port}/data`,
    `http://LOCALHOST:${port}/data`,
    `http://0.0.0.0:${port}/data`,
    `http://0:${port}/data`,
    `http://[::]:${port}/data`,
  ];
  const otherForms = [
    'http://10.0.0.1/',
    'http://172.16.0.1/',
    'http://192.168.0.1/',
    'http://100.64.0.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/latest/meta-data/',
    'http://[::ffff:a9fe:a9fe]/latest/meta-data/',
    'http://[fe80::1]/',
    'http://[fc00::1]/',
    'http://[fd00::1]/',
    'http://224.0.0.1/',
    'http://[ff02::1]/',
    'http://255.255.255.255/',
    'https://10.0.0.1/',
  ];

  test('every loopback form, numeric trick and name is refused with 403 FORBIDDEN_ADDRESS', async () => {
    for (const target of loopbackForms(origin.port)) {
      const answer = await getFetch(server, target);
      assert.equal(answer.status, 403, `${target}: ${answer.text}`);
      assert.equal(answer.json.error?.code, 'FORBIDDEN_ADDRESS', target);
    }
    assert.equal(origin.requests.length, 0, 'the origin never saw a request');
  });

  test('private, link-local (metadata), unique-local, multicast, broadcast and mapped forms are refused', async () => {
    for (const target of otherForms) {
      const answer = await getFetch(server, target);
      assert.equal(answer.status, 403, `${target}: ${answer.text}`);
      assert.equal(answer.json.error?.code, 'FORBIDDEN_ADDRESS', target);
    }
  });

  test('the refusal names the class, not the resolved address', async () => {
    const answer = await getFetch(server, `http://localhost:${origin.port}/`);
    assert.match(answer.json.error?.message ?? '', /loopback/);
    assert.doesNotMatch(answer.json.error?.message ?? '', /127\.0\.0\.1|::1/);
  });

  test('POST /fetch is guarded too, and stores nothing', async () => {
    const res = await fetch(`${server.url}/fetch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://[::ffff:7f00:1]:${origin.port}/data` }),
    });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as Answer['json']).error?.code, 'FORBIDDEN_ADDRESS');
    assert.deepEqual(await server.files(), []);
  });
});

describe('FETCH_ALLOW', () => {
  let origin: Origin;
  before(async () => {
    origin = await startOrigin();
  });
  after(async () => {
    await origin.close();
  });

  test('an allowed name passes, via DNS (localhost:port)', async () => {
    const server = await startServer({ FETCH_ALLOW: `localhost:${origin.port}` });
    try {
      const answer = await fetch(`${server.url}/fetch?url=${encodeURIComponent(`http://localhost:${origin.port}/data?size=5000&seed=allow`)}`);
      assert.equal(answer.status, 200);
      const body = Buffer.from(await answer.arrayBuffer());
      assert.equal(body.length, 5000);
      assert.equal(createHash('sha256').update(body).digest('hex'), sha256Of('allow', 0, 5000));
    } finally {
      await server.close();
    }
  });

  test('an allowed host: a numeric form of it is the same host', async () => {
    const server = await startServer({ FETCH_ALLOW: '127.0.0.1' });
    try {
      const answer = await getFetch(server, `http://2130706433:${origin.port}/data?size=10`);
      assert.equal(answer.status, 200, answer.text);
    } finally {
      await server.close();
    }
  });

  test('host:port allows that port only', async () => {
    const server = await startServer({ FETCH_ALLOW: `localhost:${origin.port + 1}` });
    try {
      const answer = await getFetch(server, `http://localhost:${origin.port}/data?size=10`);
      assert.equal(answer.status, 403, answer.text);
    } finally {
      await server.close();
    }
  });

  test('each redirect hop is checked: an allowed origin cannot redirect to a refused host', async () => {
    const server = await startServer({ FETCH_ALLOW: `127.0.0.1:${origin.port}` });
    try {
      for (const to of [`http://localhost:${origin.port}/data`, `http://[::1]:${origin.port}/data`, 'http://169.254.169.254/']) {
        const answer = await getFetch(server, `${origin.url}/redirect?n=2&to=${encodeURIComponent(to)}`);
        assert.equal(answer.status, 403, `${to}: ${answer.text}`);
        assert.equal(answer.json.error?.code, 'FORBIDDEN_ADDRESS');
      }
    } finally {
      await server.close();
    }
  });

  test('a redirect to a non-HTTP scheme is refused with 502 BAD_REDIRECT', async () => {
    const server = await startServer({ FETCH_ALLOW: '127.0.0.1' });
    try {
      const answer = await getFetch(server, `${origin.url}/redirect?n=1&to=${encodeURIComponent('file:///etc/passwd')}`);
      assert.equal(answer.status, 502, answer.text);
      assert.equal(answer.json.error?.code, 'BAD_REDIRECT');
    } finally {
      await server.close();
    }
  });
});
