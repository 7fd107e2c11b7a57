/** POST /upload over HTTPS: sluice terminating TLS itself (TLS_CERT, TLS_KEY), beside the plain-HTTP row. */
import type { BodySpec } from '../lib/multipart-body.js';
import { benchPki } from '../lib/tls-pki.js';
import type { RowPlan } from '../lib/types.js';
import { bodyLength, expectStored, uploadTo } from './common.js';

/**
 * The upload-multipart row with TLS: the same body, the same sluice, a certificate made for the
 * run (P-256 ECDSA); the client verifies it. What TLS costs shows in the ratio to upload-multipart.
 */
export function uploadMultipartHttps(name: string, spec: BodySpec): RowPlan {
  return {
    name,
    group: 'sluice',
    description: 'POST /upload over HTTPS (TLS_CERT, TLS_KEY), multipart: one large file plus three fields',
    bytes: bodyLength(spec),
    ratioTo: ['upload-multipart'],
    helpers: [],
    server: {
      kind: 'sluice',
      env: (): Record<string, string> => {
        const pki = benchPki();
        return { TLS_CERT: pki.certPath, TLS_KEY: pki.keyPath };
      },
    },
    transfer: (a) => uploadTo('/upload', spec, 1, benchPki().caPath)(a),
    validate: (r) => expectStored(r, 201, 1, spec.fileBytes),
  };
}
