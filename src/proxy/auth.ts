/**
 * Authenticating to an upstream the way Docker clients do: the upstream's 401 names a scheme in
 * WWW-Authenticate. Basic gets the configured username and password on every request; Bearer
 * sends us to a token service (`realm`), asked with those credentials (or anonymously) for a token
 * per scope (`repository:<name>:pull`), kept until shortly before it expires. Credentials come from
 * the configuration or, with `exec`, from a Docker credential helper (`<command> get`).
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { readSmall, type HttpClient, UpstreamUnreachable } from './http.js';
import type { UpstreamSettings, UpstreamTimeouts } from './settings.js';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse WWW-Authenticate: `Bearer realm="https://auth",service="registry",scope="…"`, possibly several challenges. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const value of Array.isArray(header) ? header : header ? [header] : []) {
    let i = 0;
    let current: Challenge | undefined;
    const token = (): string => {
      const m = /^[\w!#$%&'*+.^`|~/-]+/.exec(value.slice(i));
      i += m ? m[0].length : 0;
      return m ? m[0] : '';
    };
    const skip = (chars: RegExp) => {
      while (i < value.length && chars.test(value[i]!)) i++;
    };
    while (i < value.length) {
      skip(/[\s,]/);
      const word = token();
      if (word === '') {
        i++; // a stray character: step over it
        continue;
      }
      skip(/\s/);
      if (value[i] !== '=' || !current) {
        current = { scheme: word.toLowerCase(), params: {} };
        out.push(current);
        continue;
      }
      i++;
      skip(/\s/);
      let v = '';
      if (value[i] === '"') {
        for (i++; i < value.length && value[i] !== '"'; i++) v += value[i] === '\\' ? value[++i] ?? '' : value[i];
        i++;
      } else {
        v = token();
      }
      current.params[word.toLowerCase()] = v;
    }
  }
  return out;
}

/** Username and password for the upstream: fixed, or asked of a credential helper. */
export interface CredentialSource {
  get(): Promise<{ username: string; password: string } | null>;
}

export function credentialSource(u: UpstreamSettings, log: Logger): CredentialSource {
  if (u.exec) return new HelperCredentials(u.exec.command, u.exec.lifetime, new URL(u.remoteurl).host, `${u.key}.exec.command`, log);
  const fixed = u.username !== '' || u.password !== '' ? { username: u.username, password: u.password } : null;
  return { get: async () => fixed };
}

/**
 * A Docker credential helper: `<command> get` reads the server's host on stdin and prints
 * {"Username": …, "Secret": …}. As Distribution 3: without `lifetime` it runs once; with 0 before
 * every use; otherwise again once `lifetime` has passed. A helper that fails leaves us anonymous.
 */
class HelperCredentials implements CredentialSource {
  private cached: { value: { username: string; password: string }; until: number } | undefined;

  constructor(
    private readonly command: string,
    private readonly lifetime: number | undefined,
    private readonly host: string,
    private readonly key: string,
    private readonly log: Logger,
  ) {}

  async get(): Promise<{ username: string; password: string } | null> {
    if (this.cached && Date.now() < this.cached.until) return this.cached.value;
    try {
      const out = JSON.parse(await runHelper(this.command, this.host)) as { Username?: unknown; Secret?: unknown };
      if (typeof out.Username !== 'string' || typeof out.Secret !== 'string') throw new Error('its output has no "Username" and "Secret" strings');
      const value = { username: out.Username, password: out.Secret };
      const until = this.lifetime === undefined ? Infinity : this.lifetime > 0 ? Date.now() + this.lifetime : 0;
      this.cached = { value, until };
      return value;
    } catch (err) {
      this.log.error({ err: (err as Error).message }, `${this.key}: the credential helper failed; asking the upstream anonymously`);
      return null;
    }
  }
}

function runHelper(command: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-500)));
    child.once('error', (e) => reject(new Error(`cannot run "${command}": ${e.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`"${command} get" exited with ${code}${err.trim() ? `: ${err.trim()}` : ''}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(host);
  });
}

/** The token service or the upstream refused our credentials: configuration, not the network. */
export class UpstreamAuthError extends Error {
  override name = 'UpstreamAuthError';
}

/** Distribution's client keeps a token at least this long, whatever `expires_in` says. */
const MIN_TOKEN_SECONDS = 60;
const TOKEN_MARGIN_MS = 5_000;

interface Token {
  value: string;
  until: number;
}

export class UpstreamAuth {
  /** The scheme the upstream asked for; undefined until its first 401. */
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, Token>();
  private readonly pending = new Map<string, Promise<Token>>();
  private warnedRealm = false;

  constructor(
    private readonly remote: URL,
    private readonly key: string,
    private readonly credentials: CredentialSource,
    private readonly http: HttpClient,
    private readonly timeouts: UpstreamTimeouts,
    private readonly log: Logger,
  ) {}

  /** The Authorization header for a request in `scope`, or undefined when none is known to be needed. */
  async header(scope: string): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      const creds = await this.credentials.get();
      return creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    }
    if (c.scheme !== 'bearer') return undefined;
    const token = this.tokens.get(scope);
    if (token && Date.now() < token.until) return `Bearer ${token.value}`;
    let fetching = this.pending.get(scope);
    if (!fetching) {
      fetching = this.fetchToken(c, scope).finally(() => this.pending.delete(scope));
      this.pending.set(scope, fetching);
    }
    return `Bearer ${(await fetching).value}`;
  }

  /**
   * The upstream answered 401 to a request that carried `sent`. Returns true when a retry can
   * do better: the scheme is new to us, or the token we sent may have expired or been revoked.
   */
  challenged(wwwAuthenticate: string | string[] | undefined, scope: string, sent: string | undefined): boolean {
    const challenges = parseChallenges(wwwAuthenticate);
    const chosen = challenges.find((c) => c.scheme === 'bearer' && c.params.realm) ?? challenges.find((c) => c.scheme === 'basic');
    if (!chosen) return false;
    const changed = !this.challenge || this.challenge.scheme !== chosen.scheme || this.challenge.params.realm !== chosen.params.realm;
    this.challenge = chosen;
    if (changed) {
      this.tokens.clear();
      return true;
    }
    if (sent === undefined) return true;
    if (chosen.scheme !== 'bearer') return false; // the same basic credentials again would be refused again
    const held = this.tokens.get(scope);
    if (held && `Bearer ${held.value}` === sent) this.tokens.delete(scope);
    return true;
  }

  private async fetchToken(c: Challenge, scope: string): Promise<Token> {
    let realm: URL;
    try {
      realm = new URL(c.params.realm!);
    } catch {
      throw new UpstreamAuthError(`the upstream ${this.remote.origin} names an invalid token realm ${JSON.stringify(c.params.realm)}`);
    }
    const url = new URL(realm);
    if (c.params.service) url.searchParams.set('service', c.params.service);
    url.searchParams.append('scope', scope);
    const headers: Record<string, string> = { Accept: 'application/json' };
    const creds = await this.credentials.get();
    if (creds && creds.username !== '' && creds.password !== '') {
      if (this.realmTrusted(realm)) {
        url.searchParams.set('account', creds.username);
        headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      } else if (!this.warnedRealm) {
        this.warnedRealm = true;
        this.log.warn({ upstream: this.remote.origin, realm: realm.origin }, `${this.key}: the token realm is on another domain than the upstream; asking it for tokens without the credentials`);
      }
    }
    const res = await this.http.send(url, { method: 'GET', headers, timeouts: this.timeouts });
    let body: Buffer;
    try {
      body = await readSmall(res.body, 1024 * 1024);
    } catch (err) {
      throw new UpstreamUnreachable(`token service ${realm.origin}: ${(err as Error).message}`);
    }
    if (res.status === 401 || res.status === 403) {
      throw new UpstreamAuthError(`the token service ${realm.origin}${realm.pathname} refused the credentials in ${this.key}.username and password (or exec) (HTTP ${res.status})`);
    }
    if (res.status !== 200) throw new UpstreamAuthError(`the token service ${realm.origin}${realm.pathname} answered HTTP ${res.status}`);
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc;
    } catch {
      throw new UpstreamAuthError(`the token service ${realm.origin}${realm.pathname} answered something that is not JSON`);
    }
    const value = typeof doc.access_token === 'string' && doc.access_token !== '' ? doc.access_token : doc.token;
    if (typeof value !== 'string' || value === '') throw new UpstreamAuthError(`the token service ${realm.origin}${realm.pathname} answered without a token`);
    const seconds = typeof doc.expires_in === 'number' && doc.expires_in > MIN_TOKEN_SECONDS ? doc.expires_in : MIN_TOKEN_SECONDS;
    const token = { value, until: Date.now() + seconds * 1000 - TOKEN_MARGIN_MS };
    this.tokens.set(scope, token);
    return token;
  }

  /**
   * Credentials go only to a realm on the upstream's own host name or its registrable domain
   * (auth.docker.io for registry-1.docker.io), as Distribution 3 decides; IP addresses must match exactly.
   */
  private realmTrusted(realm: URL): boolean {
    const a = this.remote.hostname.toLowerCase();
    const b = realm.hostname.toLowerCase();
    if (a === b) return true;
    const isIP = (h: string) => /^[\d.]+$/.test(h) || h.includes(':') || h === 'localhost';
    if (isIP(a) || isIP(b)) return false;
    return registrable(a) === registrable(b);
  }
}

/** The last two labels, or three under a short second-level label such as co.uk (an approximation of the public suffix list). */
function registrable(host: string): string {
  const labels = host.replace(/\.$/, '').split('.');
  const n = labels.length >= 3 && labels[labels.length - 1]!.length === 2 && labels[labels.length - 2]!.length <= 3 ? 3 : 2;
  return labels.slice(-n).join('.');
}
