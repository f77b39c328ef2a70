/**
 * The `redirect` storage middleware: blob GETs are redirected to `baseurl` with the storage path
 * appended (`https://cdn.example.com/docker/registry/v2/blobs/sha256/ab/ab…/data`), for a CDN or
 * web server in front of the storage. The path is the driver's path, without its rootdirectory.
 *
 * URLs are built as Distribution's middleware builds them: scheme (lower-cased) and host as written
 * in baseurl, query and fragment dropped, the path escaped as Go's url.URL escapes it. baseurl's own
 * path is kept (`https://cdn/reg` gives `https://cdn/reg/docker/…`) as in Distribution 3; 2.8 drops it.
 */
import { posix } from 'node:path';
import { checkPath, type RedirectClient, type StorageDriver } from '../driver.js';
import { checkHttpURL, type MiddlewareOptions } from './options.js';
import { WrappedDriver } from './wrap.js';

export const REDIRECT_OPTIONS = ['baseurl'] as const;

export interface RedirectSettings {
  scheme: string;
  host: string;
  /** baseurl's path, percent-decoded; '' when it has none. */
  basePath: string;
}

export function parseRedirectOptions(o: MiddlewareOptions): RedirectSettings {
  const expected = 'an absolute http(s) URL such as "https://cdn.example.com:5443"';
  const baseurl = o.string('baseurl', expected, true);
  const problem = checkHttpURL(baseurl);
  if (problem) o.fail('baseurl', problem);
  // The raw pieces, not WHATWG's normalised ones: Distribution keeps the host as written.
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(baseurl);
  if (!m) o.fail('baseurl', `required, ${expected}`);
  const host = m[2].slice(m[2].lastIndexOf('@') + 1);
  let basePath: string;
  try {
    basePath = decodeURIComponent(m[3]);
  } catch {
    o.fail('baseurl', `the path of ${JSON.stringify(baseurl)} has a bad %-escape`);
  }
  return { scheme: m[1].toLowerCase(), host, basePath };
}

/** The URL for a storage path (Go: url.URL{Scheme, Host, Path: path.Join(base, p)}.String()). */
export function redirectURLFor(s: RedirectSettings, path: string): string {
  let p = s.basePath === '' ? path : goCleanPath(posix.join(s.basePath, path));
  if (p !== '' && !p.startsWith('/')) p = `/${p}`;
  return `${s.scheme}://${s.host}${escapeGoPath(p)}`;
}

export class RedirectMiddleware extends WrappedDriver {
  constructor(
    inner: StorageDriver,
    readonly settings: RedirectSettings,
  ) {
    super(inner);
  }

  override async redirectURL(_method: string, path: string, _client?: RedirectClient): Promise<string | null> {
    checkPath(this.name, path);
    return redirectURLFor(this.settings, path);
  }
}

/** Go's path.Join cleans: no trailing slash (Node's posix.join keeps one). */
function goCleanPath(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** Go's escape(s, encodePath): unreserved characters and $&+,/:;=@ stay, the rest is %XX. */
function escapeGoPath(p: string): string {
  let out = '';
  for (const byte of Buffer.from(p, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~$&+,/:;=@]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
