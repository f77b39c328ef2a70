// Turns a parsed YAML document into plain data, guided by the schema:
// - unknown keys of fixed-key sections become warnings and are dropped;
// - string fields keep the scalar's source text, like Go's yaml.v2 does
//   (`secret: 0123` is "0123", `username: no` is "no");
// - aliases and `<<` merge keys are resolved; duplicate keys warn, last wins.
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError, dottedPath, type KeyPath } from './errors.js';
import { shapeOf } from './introspect.js';

export interface DecodeContext {
  doc: Document;
  warnings: string[];
  /** Appended to warnings, e.g. ` in REGISTRY_HTTP_TLS`. */
  origin: string;
}

const MAX_DEPTH = 64;

function resolveAlias(node: unknown, doc: Document, path: KeyPath = []): unknown {
  let n = node;
  for (let i = 0; i < 16 && isAlias(n); i++) {
    const target: unknown = n.resolve(doc);
    if (target === undefined) throw new ConfigError(`${dottedPath(path) || 'configuration'}: unknown YAML anchor "*${n.source}"`);
    n = target;
  }
  return n;
}

const isMergeKey = (key: unknown): boolean =>
  isScalar(key) && typeof key.value === 'symbol' && key.value.description === '<<';

function keyString(key: unknown, doc: Document): string {
  if (isScalar(key)) return key.value === null ? '' : String(key.value);
  if (key && typeof key === 'object' && 'toJS' in key) return JSON.stringify((key as Node).toJS(doc));
  return String(key);
}

/** The pairs of a YAML mapping as [key, value-node], merges applied. */
function entries(map: unknown, ctx: DecodeContext, path: KeyPath, depth = 0): Array<[string, unknown]> {
  const out = new Map<string, unknown>();
  const merged: Array<[string, unknown]> = [];
  if (!isMap(map)) return [];
  for (const pair of map.items) {
    if (isMergeKey(pair.key)) {
      if (depth > MAX_DEPTH) continue;
      const src = resolveAlias(pair.value, ctx.doc, path);
      const sources = isSeq(src) ? src.items.map((it) => resolveAlias(it, ctx.doc, path)) : [src];
      for (const s of sources) merged.push(...entries(s, ctx, path, depth + 1));
      continue;
    }
    const k = keyString(pair.key, ctx.doc);
    if (out.has(k)) {
      ctx.warnings.push(`duplicate configuration key "${dottedPath([...path, k])}"${ctx.origin} (the last one is used)`);
      out.delete(k);
    }
    out.set(k, pair.value);
  }
  // Explicit keys win over merged ones; earlier merge sources win over later.
  for (const [k, v] of merged) if (!out.has(k)) out.set(k, v);
  return [...out];
}

function toPlain(node: unknown, ctx: DecodeContext, path: KeyPath): unknown {
  if (node === null || node === undefined) return null;
  if (isAlias(node) || isScalar(node) || isMap(node) || isSeq(node)) {
    try {
      return (node as Node).toJS(ctx.doc, { maxAliasCount: 1000 });
    } catch (err) {
      throw new ConfigError(`${dottedPath(path) || 'configuration'}: ${(err as Error).message}`);
    }
  }
  return node;
}

/**
 * Decodes `node` for `schema`. Returns `undefined` for an absent or null
 * scalar, except that a null mapping stays `null` (so `inmemory:` with no
 * value still counts as present).
 */
export function decodeNode(node: unknown, schema: z.ZodType, path: KeyPath, ctx: DecodeContext, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw new ConfigError(`${dottedPath(path)}: configuration nested too deeply`);
  const n = resolveAlias(node, ctx.doc, path);
  const isNull = n === null || n === undefined || (isScalar(n) && n.value === null);
  const shape = shapeOf(schema);

  switch (shape.kind) {
    case 'object': {
      if (isNull) return null;
      if (!isMap(n)) return toPlain(n, ctx, path);
      const out: Record<string, unknown> = {};
      for (const [k, v] of entries(n, ctx, path)) {
        const field = Object.hasOwn(shape.keys, k) ? shape.keys[k] : shape.rest;
        if (!field) {
          const near = Object.keys(shape.keys).find((x) => x.toLowerCase() === k.toLowerCase());
          const hint = near ? `; did you mean "${dottedPath([...path, near])}"?` : '';
          ctx.warnings.push(`unknown configuration key "${dottedPath([...path, k])}"${ctx.origin} (ignored${hint})`);
          continue;
        }
        const val = decodeNode(v, field, [...path, k], ctx, depth + 1);
        // Free keys (`storage.<driver>`) count even when empty.
        if (val !== undefined) out[k] = val;
        else if (field === shape.rest) out[k] = null;
      }
      return out;
    }
    case 'record': {
      if (isNull) return null;
      if (!isMap(n)) return toPlain(n, ctx, path);
      const out: Record<string, unknown> = {};
      for (const [k, v] of entries(n, ctx, path)) {
        out[k] = decodeNode(v, shape.value, [...path, k], ctx, depth + 1) ?? null;
      }
      return out;
    }
    case 'array': {
      if (isNull) return undefined;
      if (!isSeq(n)) return toPlain(n, ctx, path);
      return n.items.map((it, i) => decodeNode(it, shape.element, [...path, i], ctx, depth + 1) ?? null);
    }
    case 'string': {
      if (isNull) return undefined;
      if (isScalar(n)) {
        if (typeof n.value === 'string') return n.value;
        return typeof n.source === 'string' ? n.source : String(n.value);
      }
      return toPlain(n, ctx, path);
    }
    default: {
      const v = toPlain(n, ctx, path);
      return v === null ? undefined : v;
    }
  }
}

/**
 * Parses YAML the way Go's yaml.v2 reads Distribution's files: YAML 1.1
 * scalars (yes/no/on/off booleans, 0777 octal), merge keys, and duplicate keys
 * allowed (last wins). Sexagesimal numbers and timestamps stay strings.
 */
export function parseYaml(text: string): Document {
  return parseDocument(text, {
    version: '1.1',
    merge: true,
    uniqueKeys: false,
    prettyErrors: true,
    customTags: (tags) =>
      tags.filter((t) => {
        const tag = t as { format?: string; tag?: string };
        return tag.format !== 'TIME' && tag.tag !== 'tag:yaml.org,2002:timestamp';
      }),
  });
}
