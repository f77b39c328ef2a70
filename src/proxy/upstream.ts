/**
 * One upstream registry: requests under its /v2/ with its credentials, and the mapping of what it
 * answers to the errors our clients see. A 401 is answered once with fresh credentials (the
 * upstream's challenge tells which), so the first request and an expired token each cost one retry.
 */
import type { Logger } from 'pino';
import { RegistryError, type ErrorCode } from '../registry/errors.js';
import { UpstreamAuth, UpstreamAuthError, credentialSource } from './auth.js';
import { rawGet, type RawResponse } from '../storage/raw-get.js';
import { HttpClient, UpstreamUnreachable, type UpstreamResponse } from './http.js';
import type { UpstreamSettings, UpstreamTimeouts } from './settings.js';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** What a client asked for, for error messages: the local and upstream names, and the digest or tag. */
export interface Wanted {
  code: Extract<ErrorCode, 'BLOB_UNKNOWN' | 'MANIFEST_UNKNOWN'>;
  name: string;
  remoteName: string;
  reference: string;
}

export class Upstream {
  private readonly auth: UpstreamAuth;
  readonly origin: string;

  constructor(
    readonly settings: UpstreamSettings,
    private readonly http: HttpClient,
    private readonly timeouts: UpstreamTimeouts,
    log: Logger,
  ) {
    const remote = new URL(settings.remoteurl);
    this.origin = remote.origin;
    this.auth = new UpstreamAuth(remote, settings.key, credentialSource(settings, log), http, timeouts, log);
  }

  /** `<method> <remoteurl>/v2/<name>/<path>` with pull credentials for `name`. */
  async request(method: 'GET' | 'HEAD', name: string, path: string, headers: Record<string, string> = {}): Promise<UpstreamResponse> {
    return this.send(method, new URL(`${this.settings.remoteurl}/v2/${name}/${path}`), `repository:${name}:pull`, headers);
  }

  /**
   * GET a blob for the cache on a raw connection (raw-get.ts: no garbage per socket read), when
   * the upstream answers a plain 200 with a Content-Length, redirects followed. Null for anything
   * else, an error included: the caller asks again through `request`, which explains failures.
   */
  async rawBlob(name: string, digest: string): Promise<RawResponse | null> {
    const url = new URL(`${this.settings.remoteurl}/v2/${name}/blobs/${digest}`);
    const scope = `repository:${name}:pull`;
    for (let attempt = 0; attempt < 2; attempt++) {
      const authorization = await this.auth.header(scope).catch(() => null);
      if (authorization === null) return null;
      let res: RawResponse;
      try {
        res = await rawGet(url, {
          headers: authorization ? { Authorization: authorization } : {},
          maxRedirects: 5,
          responseTimeoutMs: this.timeouts.responseMs,
          idleTimeoutMs: this.timeouts.idleMs,
        });
      } catch {
        return null;
      }
      if (res.status === 200 && res.length !== null) return res;
      res.destroy();
      if (res.status !== 401 || attempt > 0 || !this.auth.challenged(res.headers.get('www-authenticate'), scope, authorization)) return null;
    }
    return null;
  }

  /** `GET <remoteurl>/v2/` without credentials, as Distribution starts: a 401 teaches the scheme to use. */
  async ping(): Promise<UpstreamResponse> {
    const res = await this.http.send(new URL(`${this.settings.remoteurl}/v2/`), { method: 'GET', headers: {}, timeouts: this.timeouts });
    if (res.status === 401) this.auth.challenged(res.headers['www-authenticate'], '', undefined);
    return res;
  }

  private async send(method: 'GET' | 'HEAD', url: URL, scope: string, headers: Record<string, string>): Promise<UpstreamResponse> {
    for (let attempt = 0; ; attempt++) {
      const authorization = await this.auth.header(scope);
      const res = await this.http.send(url, { method, headers: authorization ? { ...headers, Authorization: authorization } : headers, timeouts: this.timeouts });
      if (res.status !== 401 || attempt > 0) return res;
      if (!this.auth.challenged(res.headers['www-authenticate'], scope, authorization)) return res;
      res.body.resume();
    }
  }

  /** What a client is told when the upstream could not give `what` (a blob or a manifest). */
  failure(err: unknown): RegistryError {
    if (err instanceof RegistryError) return err;
    if (err instanceof UpstreamUnreachable) return new RegistryError('UNAVAILABLE', `the upstream registry is unavailable: ${err.message}`);
    if (err instanceof UpstreamAuthError) return new RegistryError('UNKNOWN', `the upstream registry ${this.origin} cannot be used: ${err.message}`, undefined, 502);
    return new RegistryError('UNKNOWN', `the upstream registry ${this.origin} failed: ${(err as Error)?.message ?? String(err)}`, undefined, 502);
  }

  /** The error for an upstream answer other than success, its body drained. */
  refusal(res: UpstreamResponse, what: Wanted): RegistryError {
    res.body.resume();
    const at = `${this.origin} (as ${what.remoteName})`;
    switch (res.status) {
      case 401:
      case 403:
        return new RegistryError('DENIED', `the upstream registry ${at} refused access (HTTP ${res.status}); check ${this.settings.key}.username and password (or exec)`);
      case 404:
        return new RegistryError(
          what.code,
          `${what.code === 'BLOB_UNKNOWN' ? 'blob' : 'manifest'} unknown to the upstream registry ${at}: HTTP 404`,
          what.code === 'BLOB_UNKNOWN' ? what.reference : { name: what.name, reference: what.reference },
        );
      case 429:
        return new RegistryError('TOOMANYREQUESTS', `the upstream registry ${at} is rate limiting this cache (HTTP 429); try again later`);
      default:
        return new RegistryError('UNKNOWN', `the upstream registry ${at} answered HTTP ${res.status}`, undefined, 502);
    }
  }
}
