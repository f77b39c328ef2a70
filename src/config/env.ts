// Environment overrides, following Distribution's configuration/parser.go:
// REGISTRY_<PATH> with path segments upper-cased and joined by "_"; the value
// is YAML, decoded into the type of the key it names. Variables are applied
// in lexical order, so REGISTRY_STORAGE (a whole section) comes before
// REGISTRY_STORAGE_DELETE_ENABLED. Keys inside free-form mappings (log.fields,
// http.headers, middleware options) are created, lower-cased; list entries are
// addressed by index (REGISTRY_HTTP_TLS_CLIENTCAS_0), and the next free index
// appends, as in Distribution 3.
//
// Differences from Distribution, on purpose:
// - Keys are matched against the known schema, so a key containing "_"
//   (storage.azure.max_retries) is reachable: the longest matching key wins.
// - Distribution matches Go field names; where those differ from the YAML
//   key (REGISTRY_HEALTH_FILECHECKERS for health.file) both names work.
// - Variables that are not configuration are ignored silently:
//   REGISTRY_CONFIGURATION_PATH, and the names Docker links and Kubernetes
//   services define for a container or service called "registry"
//   (REGISTRY_PORT, REGISTRY_PORT_5000_TCP_ADDR, REGISTRY_SERVICE_HOST,
//   REGISTRY_NAME, REGISTRY_ENV_*). Any other REGISTRY_* variable that names
//   no configuration key gets a warning, as Distribution logs one.
import { isAlias } from 'yaml';
import { z } from 'zod';
import { ConfigError, dottedPath, type KeyPath } from './errors.js';
import { decodeNode, parseYaml, type DecodeContext } from './decode.js';
import { shapeOf, type Shape } from './introspect.js';
import { expandStorageShorthand } from './schema-storage.js';

const PREFIX = 'REGISTRY_';

/** REGISTRY_* variables that are not configuration keys. */
export const NOT_CONFIG_ENV = /^REGISTRY_(CONFIGURATION_PATH|PORT|PORT_.*|SERVICE_.*|NAME|ENV_.*)$/;

/** Go field names that differ from YAML keys, by parent path ("*" = any list index). */
const GO_FIELD_ALIASES: Record<string, Record<string, string>> = {
  health: { FILECHECKERS: 'file', HTTPCHECKERS: 'http', TCPCHECKERS: 'tcp' },
  notifications: { EVENTCONFIG: 'events' },
  'compatibility.schema1': { TRUSTKEY: 'signingkeyfile' },
  'log.hooks.*': { MAILOPTIONS: 'options' },
};

const ANY = z.unknown();

type Container = Record<string, unknown> | unknown[];

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function aliasKey(path: KeyPath): string {
  return path.map((p) => (typeof p === 'number' ? '*' : p)).join('.');
}

/** Longest known key (or Go field alias) spelled by segs[i..]. */
function matchKey(keys: string[], aliases: Record<string, string>, segs: string[], i: number) {
  let best: { key: string; used: number } | undefined;
  const consider = (spelled: string, key: string) => {
    const parts = spelled.toUpperCase().split('_');
    if (parts.length <= (best?.used ?? 0) || i + parts.length > segs.length) return;
    if (parts.every((p, j) => p === segs[i + j])) best = { key, used: parts.length };
  };
  for (const k of keys) consider(k, k);
  for (const [alias, k] of Object.entries(aliases)) if (keys.includes(k)) consider(alias, k);
  return best;
}

/** An existing key of a free-form mapping that matches `seg` ignoring case, else `seg` lower-cased. */
function mapKey(container: Record<string, unknown>, seg: string): string {
  return Object.keys(container).find((k) => k.toUpperCase() === seg) ?? seg.toLowerCase();
}

/** Sections that accept a bare name: `storage: inmemory`, `auth: htpasswd`. */
function expandShorthand(path: KeyPath, v: unknown): unknown {
  if (path.length === 1 && (path[0] === 'storage' || path[0] === 'auth')) return expandStorageShorthand(v);
  return v;
}

function decodePayload(name: string, payload: string, schema: z.ZodType, path: KeyPath, warnings: string[]): unknown {
  const doc = parseYaml(payload);
  const isString = shapeOf(schema).kind === 'string';
  // A string that YAML cannot read ("*secret", "a: b: c") is taken as it is.
  if (isString && (doc.errors.length > 0 || isAlias(doc.contents))) return payload;
  if (doc.errors.length > 0) {
    const detail = doc.errors[0].message.split('\n')[0];
    throw new ConfigError(`${dottedPath(path)} (${name}): the value is not valid YAML: ${detail}`);
  }
  const ctx: DecodeContext = { doc, warnings, origin: ` in ${name}` };
  return expandShorthand(path, decodeNode(doc.contents, schema, path, ctx));
}

function setEntry(container: Container, key: string | number, value: unknown): void {
  if (Array.isArray(container)) container[key as number] = value ?? null;
  else if (value === undefined) delete container[key as string];
  else container[key as string] = value;
}

function applyOne(root: Record<string, unknown>, rootSchema: z.ZodType, name: string, payload: string, warnings: string[]): void {
  const segs = name.slice(PREFIX.length).split('_');
  const ignored = (why = 'does not match any configuration key') =>
    warnings.push(`environment variable ${name} ${why} (ignored)`);

  if (segs[0] === 'VERSION') return void ignored('cannot override the configuration version');

  let container: Container = root;
  let shape: Shape = shapeOf(rootSchema);
  const path: Array<string | number> = [];
  let i = 0;
  while (i < segs.length) {
    let key: string | number;
    let child: z.ZodType;
    let used = 1;
    const seg = segs[i];
    if (shape.kind === 'object' && isPlainObject(container)) {
      const m = matchKey(Object.keys(shape.keys), GO_FIELD_ALIASES[aliasKey(path)] ?? {}, segs, i);
      if (m) {
        key = m.key;
        used = m.used;
        child = shape.keys[m.key];
      } else if (shape.rest && seg !== '') {
        key = mapKey(container, seg);
        child = shape.rest;
      } else {
        return void ignored();
      }
    } else if ((shape.kind === 'record' || shape.kind === 'any') && isPlainObject(container)) {
      if (seg === '') return void ignored();
      key = mapKey(container, seg);
      child = shape.kind === 'record' ? shape.value : ANY;
    } else if (shape.kind === 'array' && Array.isArray(container)) {
      if (!/^\d+$/.test(seg)) return void ignored(`has "${seg}" where a list index of ${dottedPath(path)} was expected`);
      key = Number(seg);
      if (key > container.length) return void ignored(`names index ${key} of ${dottedPath(path)}, which has ${container.length} entries`);
      child = shape.element;
    } else {
      return void ignored(`goes below ${dottedPath(path)}, which takes a single value`);
    }
    path.push(key);
    i += used;
    if (i === segs.length) {
      setEntry(container, key, decodePayload(name, payload, child, path, warnings));
      return;
    }
    // Descend, creating the mapping or list on the way like Distribution.
    const childShape = shapeOf(child);
    let next = expandShorthand(path, (container as Record<string | number, unknown>)[key]);
    if (childShape.kind === 'array') {
      if (!Array.isArray(next)) next = [];
    } else if (childShape.kind === 'object' || childShape.kind === 'record' || childShape.kind === 'any') {
      if (!isPlainObject(next)) next = {};
    } else {
      return void ignored(`goes below ${dottedPath(path)}, which takes a single value`);
    }
    setEntry(container, key, next);
    container = next as Container;
    shape = childShape;
  }
  ignored();
}

/**
 * Applies REGISTRY_* overrides from `env` onto the decoded file data `raw`
 * (modified in place). Warnings go to `warnings`; a value that cannot be
 * parsed throws ConfigError.
 */
export function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: Record<string, string | undefined>,
  rootSchema: z.ZodType,
  warnings: string[],
): void {
  const names = Object.keys(env)
    .filter((n) => n.startsWith(PREFIX) && env[n] !== undefined && !NOT_CONFIG_ENV.test(n))
    .sort();
  for (const name of names) applyOne(raw, rootSchema, name, env[name] as string, warnings);
}
