// Error type and the helpers that name configuration keys the way a user
// writes them: a dotted path in the file, and the REGISTRY_… variable that
// overrides it.

export type KeyPath = ReadonlyArray<string | number>;

/** A configuration that cannot be used. `issues` holds one line per problem. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly issues: readonly string[];
  constructor(message: string, issues?: readonly string[]) {
    super(message);
    this.issues = issues ?? [message];
  }
}

/** `notifications.endpoints[0].url` */
export function dottedPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** `REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL` */
export function envNameFor(path: KeyPath): string {
  return ['REGISTRY', ...path.map((s) => String(s).toUpperCase())].join('_');
}

/** `storage.filesystem.maxthreads (REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS)` */
export function keyLabel(path: KeyPath): string {
  if (path.length === 0) return 'configuration';
  return `${dottedPath(path)} (${envNameFor(path)})`;
}

/** Short rendering of a value for messages: `"abc"`, `12`, `a mapping`. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') {
    const s = v.length > 60 ? `${v.slice(0, 57)}...` : v;
    return JSON.stringify(s);
  }
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}
