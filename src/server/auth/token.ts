/**
 * `auth.token`: Bearer JWTs per the Docker token authentication specification, verified with `jose`.
 *
 * The signing key is found as Distribution finds it: an `x5c` chain that ends at a certificate of
 * `rootcertbundle` (checked with node:crypto's X509Certificate: issuer names, signatures, validity dates,
 * CA flag on intermediates), a `jwk` header (its own `x5c`, or a trusted key id), or a `kid` naming a
 * trusted key: a bundle certificate's key by its libtrust key ID (Distribution 2.8) or its RFC 7638 JWK
 * thumbprint (Distribution 3), or a key of the `jwks` file by its `kid`. Then `iss` must be `issuer`, `aud`
 * must include `service`, `exp` is required, `exp`/`nbf` get 60 s of leeway, and `alg` must be one of
 * `signingalgorithms` (never `none`). The `access` claim grants actions per resource (`*` grants all).
 *
 * Challenges as the spec and Distribution: `Bearer realm="…",service="…",scope="repository:a:pull,push"`,
 * plus `error="invalid_token"` for a token that fails verification and `error="insufficient_scope"` for a
 * valid token without the rights; all are 401 UNAUTHORIZED. With `autoredirect`, the realm is
 * `<X-Forwarded-Proto or https>://<Host><autoredirectpath or /auth/token>`, as Distribution 3.
 */
import { X509Certificate, createHash, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { calculateJwkThumbprint, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWK } from 'jose';
import { LRU } from '../../registry/cache.js';
import { AuthChallenge, quote, scopeParam, type Access, type AccessController, type Grant } from './access.js';

export interface TokenOptions {
  realm: string;
  service: string;
  issuer: string;
  rootcertbundle?: string;
  jwks?: string;
  autoredirect?: boolean;
  autoredirectpath?: string;
  signingalgorithms?: string[];
}

/** Distribution's accepted algorithms (its default list when `signingalgorithms` is not set). */
export const SIGNING_ALGORITHMS = [
  'EdDSA', 'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512',
] as const;

/** Clock skew allowed on `exp` and `nbf`, as Distribution's Leeway. */
export const LEEWAY_SECONDS = 60;
/**
 * A client sends the same token with every request of a pull or push; verifying its chain and
 * signature each time would cost more than the request. A verified token is remembered (by its
 * hash) for at most this long, and never past its own exp; nbf and exp are checked on every use.
 */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_ENTRIES = 10_000;

interface VerifiedToken {
  claims: Record<string, unknown>;
  until: number;
}
const MAX_CHAIN = 10;

/** libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, 240 bits, base32, groups of 4 joined by ':'. */
export function libtrustKeyID(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  const bits = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  let buffer = 0;
  let count = 0;
  for (const byte of bits) {
    buffer = (buffer << 8) | byte;
    count += 8;
    while (count >= 5) {
      out += alphabet[(buffer >> (count - 5)) & 31];
      count -= 5;
    }
    buffer &= (1 << count) - 1;
  }
  return out.match(/.{4}/g)!.join(':');
}

export async function jwkThumbprint(key: KeyObject): Promise<string | undefined> {
  try {
    return await calculateJwkThumbprint(key.export({ format: 'jwk' }) as JWK, 'sha256');
  } catch {
    return undefined;
  }
}

/** Every CERTIFICATE block of a PEM bundle. */
export function readCertificates(file: string): X509Certificate[] {
  const pem = readFileSync(file, 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new Error(`auth.token.rootcertbundle: certificate ${i + 1} of ${file} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

function readJwks(file: string): { kid: string; key: KeyObject }[] {
  let doc: { keys?: JWK[] };
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as { keys?: JWK[] };
  } catch (err) {
    throw new Error(`auth.token.jwks: cannot read ${file}: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc.keys)) throw new Error(`auth.token.jwks: ${file} has no "keys" list`);
  return doc.keys.map((jwk, i) => {
    try {
      const key = jwk.kty === 'oct' ? createSecretKey(Buffer.from(String(jwk.k), 'base64url')) : createPublicKey({ key: publicPart(jwk), format: 'jwk' });
      return { kid: jwk.kid ?? '', key };
    } catch (err) {
      throw new Error(`auth.token.jwks: key ${i + 1} of ${file} cannot be used: ${(err as Error).message}`);
    }
  });
}

/** Only the public members of a JWK (a JWKS file may hold private keys; they are not needed). */
function publicPart(jwk: JWK): JWK & { kty: string } {
  const { kty, crv, x, y, n, e } = jwk;
  return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined)) as unknown as JWK & { kty: string };
}

class InvalidToken extends Error {}

function certValidNow(cert: X509Certificate, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
}

/**
 * The leaf's public key when the chain (leaf first, then intermediates) ends at one of the roots.
 * Throws InvalidToken with the reason otherwise.
 */
export function verifyChain(chain: X509Certificate[], roots: X509Certificate[], now = Date.now()): KeyObject {
  const [leaf, ...intermediates] = chain;
  if (!leaf) throw new InvalidToken('empty certificate chain');
  let current = leaf;
  const used = new Set<X509Certificate>([leaf]);
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (!certValidNow(current, now)) throw new InvalidToken('a certificate of the x5c chain is expired or not yet valid');
    if (roots.some((r) => r.raw.equals(current.raw))) return leaf.publicKey;
    const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root) {
      if (!certValidNow(root, now)) throw new InvalidToken('the root certificate is expired or not yet valid');
      return leaf.publicKey;
    }
    const next = intermediates.find((c) => !used.has(c) && c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (!next) throw new InvalidToken('the x5c chain does not lead to a certificate of rootcertbundle');
    used.add(next);
    current = next;
  }
  throw new InvalidToken('the x5c chain is too long');
}

function parseX5c(x5c: unknown): X509Certificate[] {
  if (!Array.isArray(x5c) || x5c.length === 0) throw new InvalidToken('malformed x5c header');
  return x5c.map((c) => {
    if (typeof c !== 'string') throw new InvalidToken('malformed x5c header');
    try {
      return new X509Certificate(Buffer.from(c, 'base64'));
    } catch {
      throw new InvalidToken('malformed certificate in the x5c header');
    }
  });
}

interface ResourceActions {
  type?: unknown;
  name?: unknown;
  actions?: unknown;
}

export class TokenAccessController implements AccessController {
  private constructor(
    private readonly options: TokenOptions,
    private readonly roots: X509Certificate[],
    private readonly trustedKeys: Map<string, KeyObject>,
    private readonly algorithms: string[],
  ) {}

  static async create(options: TokenOptions): Promise<TokenAccessController> {
    const algorithms = options.signingalgorithms?.length ? options.signingalgorithms : [...SIGNING_ALGORITHMS];
    for (const alg of algorithms) {
      if (!(SIGNING_ALGORITHMS as readonly string[]).includes(alg)) {
        throw new Error(`auth.token.signingalgorithms: unsupported signing algorithm "${alg}" (expected some of ${SIGNING_ALGORITHMS.join(', ')})`);
      }
    }
    const roots = options.rootcertbundle ? readCertificates(options.rootcertbundle) : [];
    const jwks = options.jwks ? readJwks(options.jwks) : [];
    if (roots.length === 0 && jwks.length === 0) {
      throw new Error('auth.token requires at least one token signing key: rootcertbundle with a certificate, or jwks with a key');
    }
    const trusted = new Map<string, KeyObject>();
    for (const cert of roots) {
      trusted.set(libtrustKeyID(cert.publicKey), cert.publicKey);
      const thumb = await jwkThumbprint(cert.publicKey);
      if (thumb) trusted.set(thumb, cert.publicKey);
    }
    for (const { kid, key } of jwks) trusted.set(kid, key);
    return new TokenAccessController(options, roots, trusted, algorithms);
  }

  private challengeFor(req: IncomingMessage, accesses: readonly Access[], error?: 'invalid_token' | 'insufficient_scope'): string {
    const o = this.options;
    let realm = o.realm;
    if (o.autoredirect) {
      const proto = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim() || 'https';
      realm = `${proto}://${req.headers.host ?? ''}${o.autoredirectpath || '/auth/token'}`;
    }
    let challenge = `Bearer realm=${quote(realm)},service=${quote(o.service)}`;
    const scope = scopeParam(accesses);
    if (scope !== '') challenge += `,scope=${quote(scope)}`;
    if (error) challenge += `,error=${quote(error)}`;
    return challenge;
  }

  async authorized(req: IncomingMessage, accesses: readonly Access[]): Promise<Grant> {
    const header = req.headers.authorization;
    const space = typeof header === 'string' ? header.indexOf(' ') : -1;
    const raw = space < 0 ? '' : header!.slice(space + 1);
    if (space < 0 || raw === '' || header!.slice(0, space).toLowerCase() !== 'bearer') {
      const reason = header === undefined ? 'no credentials' : 'Authorization header is not a Bearer token';
      throw new AuthChallenge(this.challengeFor(req, accesses), reason, accesses, header !== undefined);
    }
    let claims: Record<string, unknown>;
    try {
      claims = await this.verify(raw);
    } catch (err) {
      const reason = err instanceof InvalidToken ? err.message : describeJoseError(err);
      throw new AuthChallenge(this.challengeFor(req, accesses, 'invalid_token'), `invalid token: ${reason}`, accesses, true);
    }
    const granted = grantedActions(claims.access);
    for (const a of accesses) {
      const actions = granted.get(`${a.type}:${a.name}`);
      const ok = actions !== undefined && (actions.has('*') || a.actions.every((x) => actions.has(x)));
      if (!ok) {
        const sub = typeof claims.sub === 'string' ? claims.sub : '';
        throw new AuthChallenge(
          this.challengeFor(req, accesses, 'insufficient_scope'),
          `insufficient scope: the token of ${JSON.stringify(sub)} does not grant ${a.type}:${a.name}:${a.actions.join(',')}`,
          accesses,
          true,
        );
      }
    }
    return { user: typeof claims.sub === 'string' ? claims.sub : '' };
  }

  private readonly verified = new LRU<VerifiedToken>(VERIFIED_ENTRIES);

  private async verify(raw: string): Promise<Record<string, unknown>> {
    const id = createHash('sha256').update(raw).digest('base64');
    const now = Date.now();
    const known = this.verified.get(id);
    if (known && now < known.until) {
      const nbf = known.claims.nbf;
      if (typeof nbf !== 'number' || nbf * 1000 <= now + LEEWAY_SECONDS * 1000) return known.claims;
    }
    const claims = await this.verifyFully(raw);
    const exp = (claims.exp as number) * 1000 + LEEWAY_SECONDS * 1000;
    this.verified.set(id, { claims, until: Math.min(exp, now + VERIFIED_TTL_MS) });
    return claims;
  }

  private async verifyFully(raw: string): Promise<Record<string, unknown>> {
    let header: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(raw) as Record<string, unknown>;
    } catch {
      throw new InvalidToken('malformed token');
    }
    if (raw.split('.').length !== 3) throw new InvalidToken('malformed token');
    const alg = header.alg;
    if (typeof alg !== 'string' || !this.algorithms.includes(alg)) {
      throw new InvalidToken(`signing algorithm ${JSON.stringify(alg)} is not accepted`);
    }
    const key = await this.signingKey(header);
    const { payload } = await jwtVerify(raw, key, {
      algorithms: this.algorithms,
      issuer: this.options.issuer,
      audience: this.options.service,
      clockTolerance: LEEWAY_SECONDS,
      requiredClaims: ['exp'],
    });
    return payload as Record<string, unknown>;
  }

  private async signingKey(header: Record<string, unknown>): Promise<KeyObject> {
    if (header.x5c !== undefined) return verifyChain(parseX5c(header.x5c), this.roots);
    if (header.jwk !== undefined) {
      const jwk = header.jwk as JWK & { x5c?: unknown };
      if (typeof jwk !== 'object' || jwk === null) throw new InvalidToken('malformed jwk header');
      if (jwk.x5c !== undefined) {
        const key = verifyChain(parseX5c(jwk.x5c), this.roots);
        return key;
      }
      const byKid = typeof jwk.kid === 'string' ? this.trustedKeys.get(jwk.kid) : undefined;
      if (byKid) return byKid;
      let thumb: string | undefined;
      try {
        thumb = await calculateJwkThumbprint(publicPart(jwk), 'sha256');
      } catch {
        throw new InvalidToken('malformed jwk header');
      }
      const byThumb = this.trustedKeys.get(thumb);
      if (byThumb) return byThumb;
      throw new InvalidToken('untrusted JWK with no certificate chain');
    }
    if (typeof header.kid === 'string' && header.kid !== '') {
      const key = this.trustedKeys.get(header.kid);
      if (key) return key;
      throw new InvalidToken(`token signed by untrusted key with ID ${JSON.stringify(header.kid)}`);
    }
    throw new InvalidToken('the token names no signing key (x5c, jwk or kid)');
  }
}

function grantedActions(access: unknown): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  if (!Array.isArray(access)) return out;
  for (const item of access as ResourceActions[]) {
    if (typeof item !== 'object' || item === null || typeof item.type !== 'string' || typeof item.name !== 'string') continue;
    const key = `${item.type}:${item.name}`;
    const set = out.get(key) ?? new Set<string>();
    if (Array.isArray(item.actions)) for (const a of item.actions) if (typeof a === 'string') set.add(a);
    out.set(key, set);
  }
  return out;
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} rejected (${err.reason})`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (err instanceof joseErrors.JOSEError) return `${err.code}`;
  return 'cannot be verified';
}
