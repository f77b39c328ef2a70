// Reading, merging (file + environment), validating and freezing the
// configuration.
import { readFileSync } from 'node:fs';
import { isMap, isScalar, type Document } from 'yaml';
import type { z } from 'zod';
import { decodeNode, parseYaml } from './decode.js';
import { DEFAULT_CONFIG_YAML, DEFAULT_SOURCE } from './defaults.js';
import { applyEnvOverrides } from './env.js';
import { ConfigError, describeValue, keyLabel, type KeyPath } from './errors.js';
import { configSchema, type Config } from './schema.js';
import { expandStorageShorthand, FILESYSTEM_MIN_THREADS } from './schema-storage.js';

export interface LoadedConfig {
  config: Config;
  warnings: string[];
  /** The file path, or "embedded default". */
  source: string;
}

export const SUPPORTED_VERSION = '0.1';

const sourceLabel = (source: string) => (source === DEFAULT_SOURCE ? DEFAULT_SOURCE : `"${source}"`);

function fail(source: string, issues: string[]): never {
  const head = `configuration ${sourceLabel(source)}`;
  const message =
    issues.length === 1 ? `${head}: ${issues[0]}` : `${head} has ${issues.length} errors:\n  ${issues.join('\n  ')}`;
  throw new ConfigError(message, issues);
}

function checkVersion(doc: Document, source: string): void {
  const root: unknown = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    fail(source, [`version: missing; the file must start with "version: ${SUPPORTED_VERSION}"`]);
  }
  if (!isMap(root)) {
    fail(source, [`expected a mapping of configuration sections, got ${describeValue(doc.toJS())}`]);
  }
  const node: unknown = root.get('version', true);
  let version: string;
  if (node === undefined || (isScalar(node) && node.value === null)) version = '';
  else if (isScalar(node)) version = typeof node.value === 'string' ? node.value : (node.source ?? String(node.value));
  else version = describeValue(doc.toJS()?.version);
  if (version === '') fail(source, [`version: missing; expected "version: ${SUPPORTED_VERSION}"`]);
  if (version !== SUPPORTED_VERSION) {
    fail(source, [`version: unsupported version: "${version}" (expected ${SUPPORTED_VERSION})`]);
  }
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path as KeyPath;
  const label = keyLabel(path);
  const input = (issue as { input?: unknown }).input;
  if (issue.code === 'custom' && input === undefined) return `${label}: ${issue.message}`;
  if (input === undefined) return `${label}: missing; ${issue.message}`;
  return `${label}: ${issue.message}, got ${describeValue(input)}`;
}

const get = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

/** Warnings about values that are accepted but adjusted or deprecated. */
function adjustmentWarnings(raw: Record<string, unknown>, warnings: string[]): void {
  if (raw.loglevel !== undefined) warnings.push('"loglevel" is deprecated; use "log.level" instead');
  const threads = get(raw, 'storage', 'filesystem', 'maxthreads');
  const n = typeof threads === 'string' && /^\s*\d+\s*$/.test(threads) ? Number(threads) : threads;
  if (typeof n === 'number' && Number.isInteger(n) && n < FILESYSTEM_MIN_THREADS) {
    warnings.push(`storage.filesystem.maxthreads: ${n} is below the minimum of ${FILESYSTEM_MIN_THREADS}; using ${FILESYSTEM_MIN_THREADS}`);
  }
  if (get(raw, 'storage', 'cache', 'layerinfo') !== undefined) {
    warnings.push('"storage.cache.layerinfo" is deprecated; use "storage.cache.blobdescriptor" instead');
  }
  const cache = get(raw, 'storage', 'cache', 'blobdescriptor') ?? get(raw, 'storage', 'cache', 'layerinfo');
  if (typeof cache === 'string' && cache !== '' && cache !== 'inmemory' && cache !== 'redis') {
    warnings.push(`storage.cache.blobdescriptor: unknown cache type "${cache}" (expected inmemory or redis); blob descriptor caching is disabled`);
  }
  if (cache === 'redis' && get(raw, 'storage', 'cache', 'blobdescriptorsize') !== undefined) {
    warnings.push('storage.cache.blobdescriptorsize: applies to the inmemory cache only; ignored with redis');
  }
  const redis = get(raw, 'redis');
  if (cache !== 'redis' && (get(redis, 'addr') || get(redis, 'addrs'))) {
    warnings.push('redis: configured but not used (only storage.cache.blobdescriptor: redis uses it)');
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

/**
 * Parses configuration text, applies REGISTRY_* overrides from `env`, and
 * validates the result. Throws ConfigError naming each bad key.
 */
export function parseConfig(yamlText: string, env: Record<string, string | undefined>, source: string): LoadedConfig {
  const doc = parseYaml(yamlText);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    const what = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    fail(source, [`invalid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${what}`]);
  }
  checkVersion(doc, source);

  const warnings: string[] = [];
  const raw = decodeNode(doc.contents, configSchema, [], { doc, warnings, origin: '' }) as Record<string, unknown>;
  raw.version = SUPPORTED_VERSION; // checked above; not overridable
  for (const k of ['storage', 'auth']) if (raw[k] !== undefined) raw[k] = expandStorageShorthand(raw[k]);
  applyEnvOverrides(raw, env, configSchema, warnings);
  adjustmentWarnings(raw, warnings);

  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) fail(source, result.error.issues.map(formatIssue));
  return { config: deepFreeze(result.data), warnings, source };
}

function readError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return (err as Error).message;
  }
}

/**
 * Loads the configuration from `path` (or, when absent, the file named by
 * REGISTRY_CONFIGURATION_PATH in `env`, as Distribution does), or else the
 * embedded default. `env` defaults to process.env.
 */
export function loadConfig(opts: { path?: string; env?: Record<string, string | undefined> } = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const path = opts.path ?? (env.REGISTRY_CONFIGURATION_PATH || undefined);
  if (path === undefined) return parseConfig(DEFAULT_CONFIG_YAML, env, DEFAULT_SOURCE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file "${path}": ${readError(err)}`);
  }
  return parseConfig(text, env, path);
}
