/**
 * The fake's authentication, after Google's published protocols:
 * - the token endpoint takes an RFC 7523 jwt-bearer grant: an RS256 JWT from a known service
 *   account (`iss`), signed with its private key, `aud` = this endpoint, a storage scope, `iat` and
 *   `exp` at most an hour apart and current; it answers an opaque bearer token of its own;
 * - API requests must carry one of those tokens, unexpired;
 * - V4 signed URLs (GOOG4-RSA-SHA256) are checked as Cloud Storage documents the signing process:
 *   canonical request (method, path, sorted query without the signature, signed headers,
 *   UNSIGNED-PAYLOAD), string to sign (algorithm, X-Goog-Date, credential scope, SHA-256 of the
 *   canonical request), RSA-SHA256 signature in hex by the account named in X-Goog-Credential,
 *   within X-Goog-Expires seconds of X-Goog-Date.
 */
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';

const STORAGE_SCOPES = [
  'https://www.googleapis.com/auth/devstorage.full_control',
  'https://www.googleapis.com/auth/devstorage.read_write',
  'https://www.googleapis.com/auth/cloud-platform',
];
const CLOCK_SKEW_S = 60;
const MAX_SIGNED_EXPIRY_S = 7 * 24 * 3600;

export type Verdict = { ok: true; email: string } | { ok: false; message: string };

function json(part: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/** RFC 3986 percent-encoding (unreserved characters stay), as the canonical query needs. */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export class FakeAuth {
  private readonly accounts = new Map<string, KeyObject>();
  private readonly tokens = new Map<string, { email: string; expires: number }>();
  /** Tokens issued, and grants refused with why (for tests to look at). */
  issued = 0;
  readonly refusals: string[] = [];
  tokenLifetimeS = 3600;

  constructor(readonly tokenURL: string) {}

  addAccount(email: string, publicKeyPem: string): void {
    this.accounts.set(email, createPublicKey(publicKeyPem));
  }

  /** POST token_uri: the form body's grant, answered as RFC 6749 says (400 invalid_grant on refusal). */
  exchange(form: URLSearchParams): { status: number; body: Record<string, unknown> } {
    const refuse = (error: string, description: string) => {
      this.refusals.push(description);
      return { status: 400, body: { error, error_description: description } };
    };
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return refuse('unsupported_grant_type', `grant_type ${form.get('grant_type')}`);
    const parts = (form.get('assertion') ?? '').split('.');
    if (parts.length !== 3) return refuse('invalid_request', 'the assertion is not a JWT');
    const [h, p, s] = parts;
    const header = json(h);
    const claims = json(p);
    if (!header || !claims) return refuse('invalid_request', 'the assertion is not a JWT');
    if (header.alg !== 'RS256') return refuse('invalid_grant', `alg ${String(header.alg)}`);
    const email = claims.iss;
    const key = typeof email === 'string' ? this.accounts.get(email) : undefined;
    if (!key) return refuse('invalid_grant', `unknown service account ${String(email)}`);
    if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) return refuse('invalid_grant', 'Invalid JWT Signature.');
    if (claims.aud !== this.tokenURL) return refuse('invalid_grant', `aud ${String(claims.aud)} is not ${this.tokenURL}`);
    const now = Math.floor(Date.now() / 1000);
    const { iat, exp } = claims;
    if (typeof iat !== 'number' || typeof exp !== 'number') return refuse('invalid_grant', 'iat and exp are required');
    if (iat > now + CLOCK_SKEW_S || exp <= now || exp - iat > 3600) return refuse('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.');
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
    if (!scopes.some((sc) => STORAGE_SCOPES.includes(sc))) return refuse('invalid_scope', `no storage scope in ${String(claims.scope)}`);
    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { email: email as string, expires: Date.now() + this.tokenLifetimeS * 1000 });
    this.issued++;
    return { status: 200, body: { access_token: token, expires_in: this.tokenLifetimeS, token_type: 'Bearer' } };
  }

  /** Invalidate every token issued so far (as revoking a key does). */
  revokeAll(): void {
    this.tokens.clear();
  }

  /** The account behind an `Authorization: Bearer` header, or why not. */
  bearer(header: string | undefined): Verdict {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!m) return { ok: false, message: 'Anonymous caller does not have storage.objects access (no bearer token).' };
    const t = this.tokens.get(m[1]);
    if (!t) return { ok: false, message: 'Invalid Credentials (unknown token).' };
    if (t.expires <= Date.now()) return { ok: false, message: 'Invalid Credentials (expired token).' };
    return { ok: true, email: t.email };
  }

  /** Check a V4 signed URL; `rawPath` is the path as sent (still percent-encoded). */
  signedURL(method: string, rawPath: string, query: URLSearchParams, headers: Record<string, string | string[] | undefined>): Verdict {
    const no = (message: string): Verdict => ({ ok: false, message });
    if (query.get('X-Goog-Algorithm') !== 'GOOG4-RSA-SHA256') return no(`unsupported X-Goog-Algorithm ${query.get('X-Goog-Algorithm')}`);
    const credential = query.get('X-Goog-Credential') ?? '';
    const cred = /^([^/]+)\/(\d{8})\/([^/]+)\/storage\/goog4_request$/.exec(credential);
    if (!cred) return no(`malformed X-Goog-Credential ${credential}`);
    const [, email, day] = cred;
    const date = query.get('X-Goog-Date') ?? '';
    const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    if (!dm || date.slice(0, 8) !== day) return no(`X-Goog-Date ${date} does not match the credential's date ${day}`);
    const signedAt = Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]);
    const expires = Number(query.get('X-Goog-Expires'));
    if (!Number.isInteger(expires) || expires < 1 || expires > MAX_SIGNED_EXPIRY_S) return no(`X-Goog-Expires ${query.get('X-Goog-Expires')} out of range`);
    const now = Date.now();
    if (now < signedAt - CLOCK_SKEW_S * 1000) return no('the signed URL is not valid yet');
    if (now > signedAt + expires * 1000) return no('Request has expired');
    const signedHeaders = (query.get('X-Goog-SignedHeaders') ?? '').split(';');
    if (!signedHeaders.includes('host')) return no('X-Goog-SignedHeaders must include host');
    const key = this.accounts.get(email);
    if (!key) return no(`unknown service account ${email}`);
    const signature = query.get('X-Goog-Signature') ?? '';
    if (!/^[0-9a-f]+$/i.test(signature)) return no('X-Goog-Signature is not hex');

    const canonicalQuery = [...query.entries()]
      .filter(([k]) => k !== 'X-Goog-Signature')
      .map(([k, v]) => [rfc3986(k), rfc3986(v)])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    // The host as a client of Cloud Storage signs it: Google's endpoints are on the default port,
    // and the client libraries sign the host name alone, so the port is not part of it.
    const headerValue = (name: string) => {
      const v = headers[name];
      const text = Array.isArray(v) ? v.join(',') : (v ?? '');
      return name === 'host' ? text.replace(/:\d+$/, '') : text;
    };
    const canonicalHeaders = signedHeaders.map((h) => `${h}:${headerValue(h).trim().replace(/\s+/g, ' ')}\n`).join('');
    const canonicalRequest = [method, rawPath, canonicalQuery, canonicalHeaders, signedHeaders.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
    const stringToSign = ['GOOG4-RSA-SHA256', date, credential.slice(email.length + 1), createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
    if (!verify('RSA-SHA256', Buffer.from(stringToSign), key, Buffer.from(signature, 'hex'))) {
      return no('The request signature we calculated does not match the signature you provided. Check your Google secret key and signing method.');
    }
    return { ok: true, email };
  }
}
