/**
 * OAuth2 access tokens for a service-account key, as Go's oauth2/jwt does it for Distribution:
 * a JWT (RS256, signed with the key's private key, `aud` = the key's `token_uri`) is exchanged at
 * `token_uri` for a bearer token (RFC 7523 jwt-bearer grant), cached until a minute before it
 * expires. Honouring `token_uri` is why this is not google-auth-library's JWT client, whose token
 * URL is fixed.
 */
import { createSign, randomUUID } from 'node:crypto';
import { FULL_CONTROL_SCOPE, type ServiceAccountKey } from './gcs-options.js';

const ASSERTION_LIFETIME_S = 3600;
const REFRESH_EARLY_MS = 60_000;
const TOKEN_TIMEOUT_MS = 30_000;

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

export class ServiceAccountTokens {
  private cached: { token: string; expiresAt: number } | null = null;
  private pending: Promise<string> | null = null;

  constructor(
    readonly key: ServiceAccountKey,
    private readonly userAgent = 'wharf',
  ) {}

  /** A valid access token: the cached one, or a new one (one exchange at a time). */
  async token(): Promise<string> {
    if (this.cached && this.cached.expiresAt - Date.now() > REFRESH_EARLY_MS) return this.cached.token;
    this.pending ??= this.exchange().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  /** The signed assertion: header, claims and RS256 signature, as RFC 7523 describes. */
  assertion(now = Math.floor(Date.now() / 1000)): string {
    const header = { alg: 'RS256', typ: 'JWT', ...(this.key.privateKeyId ? { kid: this.key.privateKeyId } : {}) };
    const claims = {
      iss: this.key.clientEmail,
      scope: FULL_CONTROL_SCOPE,
      aud: this.key.tokenURI,
      iat: now,
      exp: now + ASSERTION_LIFETIME_S,
      jti: randomUUID(),
    };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(this.key.privateKey);
    return `${input}.${base64url(signature)}`;
  }

  private async exchange(): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: this.assertion() });
    let res: Response;
    try {
      res = await fetch(this.key.tokenURI, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': this.userAgent },
        body,
        signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
      });
    } catch (err) {
      throw new TokenError(`gcs: cannot reach the token endpoint ${this.key.tokenURI}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let json: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      json = JSON.parse(text);
    } catch {
      // reported below
    }
    if (!res.ok || typeof json.access_token !== 'string') {
      const why = typeof json.error === 'string' ? `${json.error}${typeof json.error_description === 'string' ? `: ${json.error_description}` : ''}` : text.slice(0, 200);
      throw new TokenError(`gcs: the token endpoint ${this.key.tokenURI} refused ${this.key.clientEmail} (${res.status}): ${why}`);
    }
    const lifetime = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 3600;
    this.cached = { token: json.access_token, expiresAt: Date.now() + lifetime * 1000 };
    return json.access_token;
  }

  /** Drop the cached token (the store answered 401 to it). */
  forget(): void {
    this.cached = null;
  }

  /**
   * The shape of google-auth-library's AuthClient that @google-cloud/storage calls on a client it
   * is given (GoogleAuth.authorizeRequest asks it for request headers).
   */
  sdkClient(): { getRequestHeaders(url?: string): Promise<Record<string, string>> } {
    return { getRequestHeaders: async () => ({ Authorization: `Bearer ${await this.token()}` }) };
  }
}
