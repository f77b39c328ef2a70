/**
 * `http.tls.letsencrypt`: a certificate for `hosts` from an ACME CA (Let's Encrypt unless
 * `directoryurl` says otherwise), validated with TLS-ALPN-01 on the registry's own TLS port (as
 * Distribution's autocert does), kept in `cachefile` with the account key, reused across restarts and
 * renewed 30 days before it expires (checked every 12 hours and at start).
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import acme from 'acme-client';
import type { Logger } from 'pino';
import type { LetsEncryptSettings } from './options.js';

export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
export const ACME_TLS_ALPN = 'acme-tls/1';
const DAY = 24 * 60 * 60 * 1000;

export interface KeyAndCert {
  key: string;
  /** The full chain, leaf first. */
  cert: string;
}

interface CacheFile {
  directoryUrl: string;
  accountKey: string;
  accountUrl?: string;
  certificate?: KeyAndCert & { hosts: string[] };
}

export interface AcmeOptions extends LetsEncryptSettings {
  log: Logger;
  renewBeforeMs?: number;
  checkEveryMs?: number;
  retryAfterFailureMs?: number;
}

export class AcmeCertificates {
  private cache: CacheFile;
  private readonly challenges = new Map<string, KeyAndCert>();
  private timer: NodeJS.Timeout | undefined;
  private obtaining: Promise<void> | undefined;
  private stopped = false;
  private readonly directoryUrl: string;
  private readonly waiters: Array<(kc: KeyAndCert) => void> = [];

  constructor(
    private readonly opts: AcmeOptions,
    /** Called with every certificate put in service: the cached one at start, then each new one. */
    private readonly onCertificate: (kc: KeyAndCert) => void,
  ) {
    this.directoryUrl = opts.directoryurl || LETS_ENCRYPT_DIRECTORY;
    this.cache = this.load();
  }

  /** The certificate in service, if any. */
  current(): KeyAndCert | undefined {
    const c = this.cache.certificate;
    return c && this.matches(c) ? { key: c.key, cert: c.cert } : undefined;
  }

  /** Resolves with the certificate in service, waiting for the first one to be issued. */
  ready(): Promise<KeyAndCert> {
    const now = this.current();
    return now ? Promise.resolve(now) : new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The TLS-ALPN-01 challenge certificate for a host being validated right now. */
  challenge(servername: string): KeyAndCert | undefined {
    return this.challenges.get(servername.toLowerCase());
  }

  /** Put the cached certificate in service (no network), then obtain or renew as needed. */
  start(): void {
    const now = this.current();
    if (now) {
      this.opts.log.info({ hosts: this.opts.hosts, notAfter: notAfter(now.cert).toISOString(), cachefile: this.opts.cachefile }, 'letsencrypt: using the cached certificate');
      this.onCertificate(now);
    }
    void this.check();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(), ms);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const renewBefore = this.opts.renewBeforeMs ?? 30 * DAY;
    const now = this.current();
    if (now && notAfter(now.cert).getTime() - Date.now() > renewBefore) {
      this.schedule(this.opts.checkEveryMs ?? DAY / 2);
      return;
    }
    try {
      this.obtaining ??= this.obtain();
      await this.obtaining;
      this.schedule(this.opts.checkEveryMs ?? DAY / 2);
    } catch (err) {
      this.opts.log.error({ err: String(err), hosts: this.opts.hosts, directory: this.directoryUrl }, 'letsencrypt: could not obtain a certificate; will retry');
      this.schedule(this.opts.retryAfterFailureMs ?? 60 * 60 * 1000);
    } finally {
      this.obtaining = undefined;
    }
  }

  private async obtain(): Promise<void> {
    const { log, hosts } = this.opts;
    log.info({ hosts, directory: this.directoryUrl }, 'letsencrypt: requesting a certificate');
    const client = new acme.Client({
      directoryUrl: this.directoryUrl,
      accountKey: this.cache.accountKey,
      ...(this.cache.accountUrl ? { accountUrl: this.cache.accountUrl } : {}),
    });
    const key = await acme.crypto.createPrivateEcdsaKey();
    const [, csr] = await acme.crypto.createCsr({ commonName: hosts[0], altNames: hosts }, key);
    const cert = await client.auto({
      csr,
      email: this.opts.email || undefined,
      termsOfServiceAgreed: true,
      challengePriority: ['tls-alpn-01'],
      // The CA connects back to this server; nothing to gain from checking it first ourselves.
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, _challenge, keyAuthorization) => {
        const [challengeKey, challengeCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
        this.challenges.set(authz.identifier.value.toLowerCase(), { key: challengeKey.toString(), cert: challengeCert.toString() });
      },
      challengeRemoveFn: async (authz) => {
        this.challenges.delete(authz.identifier.value.toLowerCase());
      },
    });
    try {
      this.cache.accountUrl = client.getAccountUrl();
    } catch {
      /* not registered: cannot happen after auto() */
    }
    const kc = { key: key.toString(), cert };
    this.cache.certificate = { ...kc, hosts: [...hosts] };
    this.save();
    log.info({ hosts, notAfter: notAfter(cert).toISOString(), cachefile: this.opts.cachefile }, 'letsencrypt: certificate obtained');
    this.onCertificate(kc);
    for (const w of this.waiters.splice(0)) w(kc);
  }

  private matches(c: NonNullable<CacheFile['certificate']>): boolean {
    const want = [...this.opts.hosts].map((h) => h.toLowerCase()).sort().join(',');
    return c.hosts.map((h) => h.toLowerCase()).sort().join(',') === want && notAfter(c.cert).getTime() > Date.now();
  }

  private load(): CacheFile {
    const { cachefile } = this.opts;
    if (existsSync(cachefile)) {
      let parsed: CacheFile;
      try {
        parsed = JSON.parse(readFileSync(cachefile, 'utf8')) as CacheFile;
      } catch (err) {
        throw new Error(`http.tls.letsencrypt.cachefile: ${cachefile} is not a Wharf certificate cache: ${(err as Error).message}`);
      }
      if (typeof parsed.accountKey !== 'string') throw new Error(`http.tls.letsencrypt.cachefile: ${cachefile} has no account key`);
      // An account belongs to one CA: another directory URL starts a new account (the certificate may stay).
      if (parsed.directoryUrl === this.directoryUrl) return parsed;
      return { directoryUrl: this.directoryUrl, accountKey: newAccountKey(), certificate: parsed.certificate };
    }
    const fresh: CacheFile = { directoryUrl: this.directoryUrl, accountKey: newAccountKey() };
    this.writeCache(fresh); // fail at start-up, not at renewal, when the file cannot be written
    return fresh;
  }

  private save(): void {
    this.writeCache(this.cache);
  }

  private writeCache(c: CacheFile): void {
    const { cachefile } = this.opts;
    const tmp = `${cachefile}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, JSON.stringify(c, null, 2), { mode: 0o600 });
      renameSync(tmp, cachefile);
    } catch (err) {
      throw new Error(`http.tls.letsencrypt.cachefile: cannot write ${cachefile}: ${(err as Error).message}`);
    }
  }
}

/** A P-256 account key, made synchronously at start-up (acme-client takes any PEM private key). */
function newAccountKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function notAfter(certPem: string): Date {
  return new Date(new X509Certificate(certPem).validTo);
}

/**
 * The ALPN protocols a TLS ClientHello offers, read from the first bytes of a connection.
 * null: not enough bytes yet; [] when there is no ALPN extension or this is not a ClientHello.
 */
export function clientHelloALPN(buf: Buffer): string[] | null {
  if (buf.length < 5) return null;
  if (buf[0] !== 0x16) return [];
  const recordEnd = 5 + buf.readUInt16BE(3);
  if (buf.length < recordEnd) return null;
  let p = 5;
  if (buf[p] !== 0x01) return [];
  p += 4 + 2 + 32; // handshake header, client_version, random
  const need = (n: number) => p + n <= recordEnd;
  if (!need(1)) return [];
  p += 1 + buf[p]!; // session id
  if (!need(2)) return [];
  p += 2 + buf.readUInt16BE(p); // cipher suites
  if (!need(1)) return [];
  p += 1 + buf[p]!; // compression methods
  if (!need(2)) return [];
  const extEnd = Math.min(recordEnd, p + 2 + buf.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 2);
    p += 4;
    if (type === 16 && p + 2 <= extEnd) {
      const out: string[] = [];
      let q = p + 2;
      const end = Math.min(extEnd, p + 2 + buf.readUInt16BE(p));
      while (q < end) {
        const l = buf[q]!;
        out.push(buf.toString('latin1', q + 1, q + 1 + l));
        q += 1 + l;
      }
      return out;
    }
    p += len;
  }
  return [];
}
