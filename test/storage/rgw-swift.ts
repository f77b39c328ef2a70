/**
 * Ceph RGW's Swift API for the swift tests: the same RGW as the s3 tests (started by
 * scripts/services/ceph-rgw-start.sh, which also makes the Swift subuser and prints SWIFT_*),
 * reached here with plain fetch and a v1 token, independently of the driver under test. Each
 * caller names its own container and removes it when done.
 */
import { randomBytes } from 'node:crypto';
import { startCephRgw } from './service-script.js';

export interface SwiftObject {
  name: string;
  bytes: number;
  content_type?: string;
}

export interface RgwSwift {
  authURL: string;
  user: string;
  key: string;
  storageURL: string;
  /** `storage.swift` parameters for `container`, Distribution's names (v1 auth). */
  options(container: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** A new container name (the driver creates the container). */
  containerName(label: string): string;
  /** A request to the storage URL (`target` below it) with a fresh v1 token. */
  request(method: string, target: string, init?: { headers?: Record<string, string>; body?: Buffer | string }): Promise<Response>;
  /** Every object in a container (under `prefix`), in name order. */
  objects(container: string, prefix?: string): Promise<SwiftObject[]>;
  /** Delete every object, then the container (a missing container is fine). */
  removeContainer(container: string): Promise<void>;
}

let started: Promise<RgwSwift> | null = null;

export function startRgwSwift(): Promise<RgwSwift> {
  started ??= start();
  return started;
}

async function start(): Promise<RgwSwift> {
  const { vars } = await startCephRgw();
  const authURL = vars.SWIFT_AUTH_URL;
  const user = vars.SWIFT_USER;
  const key = vars.SWIFT_KEY;
  const storageURL = vars.SWIFT_STORAGE_URL;
  if (!authURL || !user || !key || !storageURL) throw new Error(`ceph-rgw-start.sh printed no SWIFT_* lines: ${JSON.stringify(vars)}`);

  const token = async (): Promise<string> => {
    const res = await fetch(authURL, { headers: { 'X-Auth-User': user, 'X-Auth-Key': key } });
    const t = res.headers.get('x-auth-token');
    if (!res.ok || !t) throw new Error(`v1 auth as ${user} failed: ${res.status}`);
    return t;
  };
  const request: RgwSwift['request'] = async (method, target, init = {}) =>
    fetch(`${storageURL}/${target}`, { method, headers: { 'X-Auth-Token': await token(), ...init.headers }, body: init.body });
  const objects = async (container: string, prefix = ''): Promise<SwiftObject[]> => {
    const out: SwiftObject[] = [];
    for (let marker = ''; ; ) {
      const res = await request('GET', `${container}?format=json&limit=10000&prefix=${encodeURIComponent(prefix)}&marker=${encodeURIComponent(marker)}`);
      if (res.status === 404) return out;
      const page = res.status === 204 ? [] : ((await res.json()) as SwiftObject[]);
      out.push(...page);
      if (page.length === 0) return out;
      marker = page[page.length - 1].name;
    }
  };
  return {
    authURL,
    user,
    key,
    storageURL,
    options: (container, extra = {}) => ({ authurl: authURL, username: user, password: key, container, ...extra }),
    containerName: (label) => `wharf-${label}-${randomBytes(4).toString('hex')}`,
    request,
    objects,
    removeContainer: async (container) => {
      for (;;) {
        const names = (await objects(container)).map((o) => o.name);
        if (names.length === 0) break;
        for (let i = 0; i < names.length; i += 16) {
          await Promise.all(names.slice(i, i + 16).map(async (n) => (await request('DELETE', `${container}/${n}`)).arrayBuffer()));
        }
      }
      const res = await request('DELETE', container);
      if (res.status !== 204 && res.status !== 404) throw new Error(`DELETE container ${container}: ${res.status}`);
    },
  };
}
