import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import {
  EMPTY_SHA256,
  Signer,
  canonicalQuery,
  canonicalRequest,
  deriveSigningKey,
  encodePath,
  sha256Hex,
  stringToSign,
  toAmzDate,
  uriEncode,
  type SigningRequest,
} from '../storage/s3/sigv4.js';

/*
 * Worked examples from AWS's S3 API reference, "Signature Calculations for the Authorization
 * Header: Transferring Payload in a Single Chunk (AWS Signature Version 4)" (the page the
 * "Examples: Signature Calculations" section points to). Credentials are AWS's documentation
 * placeholders, never a real account. Every expected value below is copied from that page.
 */
const EXAMPLE_KEYS = { accessKey: 'AKIAIOSFODNN7EXAMPLE', secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const SCOPE = { region: 'us-east-1', service: 's3' };
const NOW = new Date('2013-05-24T00:00:00Z');
const HOST = 'examplebucket.s3.amazonaws.com';
const CREDENTIAL = 'Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request';

interface Example {
  readonly what: string;
  readonly req: SigningRequest;
  readonly canonical: string;
  /** The last line of the documented StringToSign: the hex sha256 of the canonical request. */
  readonly canonicalHash: string;
  readonly signedHeaders: string;
  readonly signature: string;
}

const EXAMPLES: readonly Example[] = [
  {
    what: 'GET Object with Range (header signed, empty payload)',
    req: { method: 'GET', path: encodePath('/test.txt'), query: [], headers: { host: HOST, range: 'bytes=0-9' }, payloadHash: EMPTY_SHA256 },
    canonical: [
      'GET',
      '/test.txt',
      '',
      `host:${HOST}`,
      'range:bytes=0-9',
      `x-amz-content-sha256:${EMPTY_SHA256}`,
      'x-amz-date:20130524T000000Z',
      '',
      'host;range;x-amz-content-sha256;x-amz-date',
      EMPTY_SHA256,
    ].join('\n'),
    canonicalHash: '7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972',
    signedHeaders: 'host;range;x-amz-content-sha256;x-amz-date',
    signature: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  },
  {
    what: 'PUT Object (`$` in the key encoded once, extra x-amz-* and Date headers signed)',
    req: {
      method: 'PUT',
      path: encodePath('/test$file.text'),
      query: [],
      headers: { Host: HOST, Date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY' },
      payloadHash: sha256Hex('Welcome to Amazon S3.'),
    },
    canonical: [
      'PUT',
      '/test%24file.text',
      '',
      'date:Fri, 24 May 2013 00:00:00 GMT',
      `host:${HOST}`,
      'x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
      'x-amz-date:20130524T000000Z',
      'x-amz-storage-class:REDUCED_REDUNDANCY',
      '',
      'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
      '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    ].join('\n'),
    canonicalHash: '9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d',
    signedHeaders: 'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
    signature: '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
  },
  {
    what: 'GET Bucket Lifecycle (a valueless query parameter becomes `lifecycle=`)',
    req: { method: 'GET', path: '/', query: [['lifecycle', '']], headers: { host: HOST }, payloadHash: EMPTY_SHA256 },
    canonical: [
      'GET',
      '/',
      'lifecycle=',
      `host:${HOST}`,
      `x-amz-content-sha256:${EMPTY_SHA256}`,
      'x-amz-date:20130524T000000Z',
      '',
      'host;x-amz-content-sha256;x-amz-date',
      EMPTY_SHA256,
    ].join('\n'),
    canonicalHash: '9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca',
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    signature: 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
  },
  {
    what: 'GET Bucket / List Objects (query given out of order is signed sorted)',
    req: { method: 'GET', path: '/', query: [['prefix', 'J'], ['max-keys', '2']], headers: { host: HOST }, payloadHash: EMPTY_SHA256 },
    canonical: [
      'GET',
      '/',
      'max-keys=2&prefix=J',
      `host:${HOST}`,
      `x-amz-content-sha256:${EMPTY_SHA256}`,
      'x-amz-date:20130524T000000Z',
      '',
      'host;x-amz-content-sha256;x-amz-date',
      EMPTY_SHA256,
    ].join('\n'),
    canonicalHash: 'df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7',
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    signature: '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
  },
];

for (const ex of EXAMPLES) {
  test(`AWS example: ${ex.what}`, () => {
    const withAmz = { ...ex.req, headers: { ...ex.req.headers, 'x-amz-content-sha256': ex.req.payloadHash, 'x-amz-date': '20130524T000000Z' } };
    const canonical = canonicalRequest(withAmz);
    assert.equal(canonical.text, ex.canonical, 'canonical request');
    assert.equal(canonical.signedHeaders, ex.signedHeaders);
    assert.equal(
      stringToSign('20130524T000000Z', SCOPE, canonical.text),
      ['AWS4-HMAC-SHA256', '20130524T000000Z', '20130524/us-east-1/s3/aws4_request', ex.canonicalHash].join('\n'),
      'string to sign',
    );
    const headers = new Signer(EXAMPLE_KEYS, SCOPE).sign(ex.req, NOW);
    assert.equal(headers.authorization, `AWS4-HMAC-SHA256 ${CREDENTIAL},SignedHeaders=${ex.signedHeaders},Signature=${ex.signature}`);
    assert.equal(headers['x-amz-date'], '20130524T000000Z');
    assert.equal(headers['x-amz-content-sha256'], ex.req.payloadHash, 'the payload hash is always sent (Ceph requires it)');
  });
}

test('signing key: the example of the AWS general reference ("Calculate the signature", IAM, 20150830)', () => {
  // That page uses a slightly different placeholder secret (`+` instead of `/`).
  const key = deriveSigningKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20150830', { region: 'us-east-1', service: 'iam' });
  assert.equal(key.toString('hex'), 'c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9');
});

test('a signer reused across days derives a new key for the new day', () => {
  const signer = new Signer(EXAMPLE_KEYS, SCOPE);
  const req = EXAMPLES[0]?.req as SigningRequest;
  const first = signer.sign(req, new Date('2013-05-24T23:59:59Z')).authorization;
  const second = signer.sign(req, new Date('2013-05-25T00:00:00Z')).authorization;
  assert.match(first, /\/20130524\//);
  assert.match(second, /\/20130525\//);
  // The same instant signed by a fresh signer gives the same answer: no stale cached key.
  assert.equal(new Signer(EXAMPLE_KEYS, SCOPE).sign(req, new Date('2013-05-25T00:00:00Z')).authorization, second);
});

test('uriEncode is the SigV4 one, not encodeURIComponent', () => {
  const cases: ReadonlyArray<{ what: string; input: string; keepSlash: boolean; out: string }> = [
    { what: 'unreserved characters stay', input: 'a-b_c.d~e09AZ', keepSlash: false, out: 'a-b_c.d~e09AZ' },
    { what: "encodeURIComponent's exceptions are encoded", input: "!'()*", keepSlash: false, out: '%21%27%28%29%2A' },
    { what: 'space is %20, never +', input: 'a b+c', keepSlash: false, out: 'a%20b%2Bc' },
    { what: 'slash encoded in query values', input: 'a/b', keepSlash: false, out: 'a%2Fb' },
    { what: 'slash kept in paths', input: '/bucket/pre/fix', keepSlash: true, out: '/bucket/pre/fix' },
    { what: 'UTF-8 bytes, upper-case hex', input: 'é€', keepSlash: false, out: '%C3%A9%E2%82%AC' },
    { what: 'astral plane character as 4 bytes', input: '😀', keepSlash: false, out: '%F0%9F%98%80' },
    { what: 'a percent sign is data', input: '%41', keepSlash: false, out: '%2541' },
  ];
  for (const c of cases) assert.equal(uriEncode(c.input, c.keepSlash), c.out, c.what);
});

test('canonicalQuery sorts by encoded name and encodes values (multipart parameters)', () => {
  assert.equal(canonicalQuery([['uploadId', 'a/b+c=='], ['partNumber', '2']]), 'partNumber=2&uploadId=a%2Fb%2Bc%3D%3D');
  assert.equal(canonicalQuery([['uploads', '']]), 'uploads=');
  assert.equal(canonicalQuery([]), '');
});

test('header values are trimmed and inner spaces collapsed', () => {
  const { text } = canonicalRequest({ method: 'GET', path: '/', query: [], headers: { Host: ' h ', 'X-Amz-Meta-A': 'a   b  ' }, payloadHash: EMPTY_SHA256 });
  assert.match(text, /\nhost:h\nx-amz-meta-a:a b\n/);
});

test('toAmzDate drops separators and milliseconds', () => {
  assert.equal(toAmzDate(new Date('2024-02-29T13:04:05.678Z')), '20240229T130405Z');
});

test('a signer never shows its secret (util.inspect, JSON.stringify)', () => {
  const signer = new Signer(EXAMPLE_KEYS, SCOPE);
  assert.doesNotMatch(inspect(signer, { depth: 5, showHidden: true }), /EXAMPLEKEY/);
  assert.doesNotMatch(JSON.stringify({ signer }), /EXAMPLEKEY/);
});
