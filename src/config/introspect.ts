// Reads the shape of the zod schema so the YAML decoder and the environment
// overrides can tell mappings with fixed keys from free-form ones, lists from
// scalars, and string fields (which keep YAML's source text) from the rest.
import type { z } from 'zod';

export type Shape =
  | { kind: 'object'; keys: Record<string, z.ZodType>; rest?: z.ZodType }
  | { kind: 'record'; value: z.ZodType }
  | { kind: 'array'; element: z.ZodType }
  | { kind: 'string' }
  | { kind: 'scalar' }
  | { kind: 'any' };

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
}

const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional', 'success']);

/** The structural kind of the input a schema accepts. */
export function shapeOf(schema: z.ZodType): Shape {
  let s = schema;
  for (;;) {
    const d = def(s);
    if (WRAPPERS.has(d.type) && d.innerType) {
      s = d.innerType;
      continue;
    }
    if (d.type === 'pipe' && d.in && d.out) {
      // A preprocess step is a pipe from a transform: its shape is the output
      // side. Otherwise the input side (before .transform()) decides.
      s = def(d.in).type === 'transform' ? d.out : d.in;
      continue;
    }
    switch (d.type) {
      case 'object': {
        const rest = d.catchall && def(d.catchall).type !== 'never' ? d.catchall : undefined;
        return { kind: 'object', keys: d.shape ?? {}, rest };
      }
      case 'record':
        return { kind: 'record', value: d.valueType! };
      case 'array':
        return { kind: 'array', element: d.element! };
      case 'string':
        return { kind: 'string' };
      case 'any':
      case 'unknown':
        return { kind: 'any' };
      case 'union': {
        const kinds = (d.options ?? []).map((o) => shapeOf(o).kind);
        return kinds.every((k) => k === 'string' || k === 'scalar') ? { kind: 'scalar' } : { kind: 'any' };
      }
      default:
        return { kind: 'scalar' };
    }
  }
}
