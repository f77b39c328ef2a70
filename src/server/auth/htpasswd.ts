/**
 * `auth.htpasswd` (`realm`, `path`): HTTP basic authentication against bcrypt entries (`$2y$`, `$2a$`,
 * `$2b$`) of an htpasswd file, with Distribution's `Basic realm="…"` challenge. Beyond Distribution:
 * entries of another hash type (or lines without a colon) are reported with their line number and ignored
 * instead of failing every request; the file is re-read when it changes (checked at most once a second);
 * verified logins are cached for a short while under an HMAC of user and password (compared in constant
 * time), and concurrent checks of the same login share one bcrypt run, so bcrypt is not paid per request.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import type { Logger } from 'pino';
import { AuthChallenge, basicCredentials, quote, type Access, type AccessController, type Grant } from './access.js';

export interface HtpasswdOptions {
  realm: string;
  path: string;
}

/** bcrypt's modular crypt format: version, two-digit cost, 22 characters of salt and 31 of hash. */
const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;
/** The cost Distribution (Go's bcrypt.DefaultCost) and `wharf htpasswd` use. */
export const BCRYPT_COST = 10;
/** Compared against for unknown users, so that they take as long as known ones. */
const DUMMY_HASH = `$2a$${BCRYPT_COST}$${'A'.repeat(53)}`;
const RECHECK_MS = 1000;
const CACHE_MS = 30_000;

export interface ParsedHtpasswd {
  entries: Map<string, string>;
  /** One line per ignored entry: `line 3: …`. No hash is ever quoted. */
  problems: string[];
}

/** Parse htpasswd text as Distribution does (trimmed lines, `#` comments, user up to the first colon). */
export function parseHtpasswd(text: string): ParsedHtpasswd {
  const entries = new Map<string, string>();
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon < 0) {
      problems.push(`line ${i + 1}: no "user:hash" entry: ignored`);
      return;
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!BCRYPT.test(hash)) {
      problems.push(`line ${i + 1}: the entry for user ${JSON.stringify(user)} is not a bcrypt hash ($2y$, $2a$, $2b$): ignored`);
      return;
    }
    entries.set(user, hash);
  });
  return { entries, problems };
}

/** As Distribution: a missing file is created with user `docker` and a random password, logged once. */
export async function provisionHtpasswd(file: string, log: Logger): Promise<boolean> {
  try {
    await fsp.access(file, fs.constants.F_OK);
    return false;
  } catch {
    /* missing: create it */
  }
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const password = randomBytes(32).toString('base64url');
  const hash = await bcrypt.hash(password, BCRYPT_COST);
  await fsp.writeFile(file, `docker:${hash}\n`, { mode: 0o600, flag: 'wx' });
  log.warn({ user: 'docker', password, path: file }, 'htpasswd is missing, provisioning with default user');
  return true;
}

interface Loaded {
  entries: Map<string, string>;
  mtimeMs: number;
  size: number;
  ino: number;
}

export class HtpasswdAccessController implements AccessController {
  private loaded: Loaded = { entries: new Map(), mtimeMs: -1, size: -1, ino: -1 };
  private checkedAt = 0;
  private checking: Promise<void> | undefined;
  /** user → HMAC of the last verified password and when it stops counting. */
  private readonly verified = new Map<string, { mac: Buffer; expires: number }>();
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private readonly cacheKey = randomBytes(32);
  private readonly challenge: string;

  private constructor(
    private readonly options: HtpasswdOptions,
    private readonly log: Logger,
  ) {
    this.challenge = `Basic realm=${quote(options.realm)}`;
  }

  static async create(options: HtpasswdOptions, log: Logger): Promise<HtpasswdAccessController> {
    const file = path.resolve(options.path);
    await provisionHtpasswd(file, log);
    const controller = new HtpasswdAccessController({ ...options, path: file }, log);
    await controller.refresh(true);
    return controller;
  }

  /** Re-read the file when its mtime, size or inode changed (at most once per RECHECK_MS unless forced). */
  private async refresh(force = false): Promise<void> {
    const now = Date.now();
    if (!force && now - this.checkedAt < RECHECK_MS) return;
    if (this.checking) return this.checking;
    this.checkedAt = now;
    this.checking = (async () => {
      try {
        const st = await fsp.stat(this.options.path);
        const l = this.loaded;
        if (!force && st.mtimeMs === l.mtimeMs && st.size === l.size && st.ino === l.ino) return;
        const parsed = parseHtpasswd(await fsp.readFile(this.options.path, 'utf8'));
        for (const p of parsed.problems) this.log.warn({ path: this.options.path }, `htpasswd ${p}`);
        this.loaded = { entries: parsed.entries, mtimeMs: st.mtimeMs, size: st.size, ino: st.ino };
        this.verified.clear();
        if (!force) this.log.info({ path: this.options.path, users: parsed.entries.size }, 'htpasswd file reloaded');
      } catch (err) {
        // A file that went away or cannot be read lets nobody in, rather than keeping removed users.
        if (this.loaded.entries.size > 0 || force) {
          this.log.error({ path: this.options.path, err: String(err) }, 'cannot read the htpasswd file: every login fails until it is back');
        }
        this.loaded = { entries: new Map(), mtimeMs: -1, size: -1, ino: -1 };
        this.verified.clear();
      }
    })().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  async authorized(req: IncomingMessage, accesses: readonly Access[]): Promise<Grant> {
    const creds = basicCredentials(req);
    if (!creds) {
      const reason = req.headers.authorization === undefined ? 'no credentials' : 'malformed Authorization header';
      throw new AuthChallenge(this.challenge, reason, accesses, req.headers.authorization !== undefined);
    }
    await this.refresh();
    if (!(await this.verify(creds.user, creds.password))) {
      throw new AuthChallenge(this.challenge, `authentication failed for user ${JSON.stringify(creds.user)}`, accesses, true);
    }
    return { user: creds.user };
  }

  private async verify(user: string, password: string): Promise<boolean> {
    const mac = createHmac('sha256', this.cacheKey).update(user).update('\0').update(password).digest();
    const cached = this.verified.get(user);
    if (cached && cached.expires > Date.now() && timingSafeEqual(cached.mac, mac)) return true;
    const key = mac.toString('hex');
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const entries = this.loaded.entries;
    const check = (async () => {
      const hash = entries.get(user);
      const ok = await bcrypt.compare(password, hash ?? DUMMY_HASH).catch(() => false);
      if (!ok || hash === undefined) return false;
      // Only if the file did not change meanwhile (a removed user must not be cached back in).
      if (this.loaded.entries === entries) this.verified.set(user, { mac, expires: Date.now() + CACHE_MS });
      return true;
    })().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, check);
    return check;
  }
}
