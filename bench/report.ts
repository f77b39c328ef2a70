// Turning per-round samples into the results table (text) and a JSON document.

import type { ServerKind } from './servers.js';
import type { RowDef } from './types.js';

export interface RowResult {
  def: RowDef;
  samples: Record<ServerKind, number[]>;
  error?: string;
  /** For rows whose target is an absolute bound on Wharf's value rather than a ratio. */
  absolute?: { max: number; text: string };
  /** Informational rows (no target). */
  info?: boolean;
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Summary {
  name: string;
  metric: string;
  unit: string;
  distribution: number;
  wharf: number;
  ratio: number;
  target: string;
  met: boolean | null;
  samples: Record<ServerKind, number[]>;
  error?: string;
}

export function summarize(r: RowResult): Summary {
  const d = median(r.samples.distribution);
  const w = median(r.samples.wharf);
  const ratio = w / d;
  let target: string;
  let met: boolean | null;
  if (r.error) {
    target = r.def.better === 'higher' ? `>= ${r.def.target.toFixed(1)}x` : `<= ${r.def.target.toFixed(1)}x`;
    met = false;
  } else if (r.info) {
    target = '(info)';
    met = null;
  } else if (r.absolute) {
    target = r.absolute.text;
    met = Number.isFinite(w) ? w <= r.absolute.max : false;
  } else if (r.def.better === 'higher') {
    target = `>= ${r.def.target.toFixed(1)}x`;
    met = Number.isFinite(ratio) ? ratio >= r.def.target : false;
  } else {
    target = `<= ${r.def.target.toFixed(1)}x`;
    met = Number.isFinite(ratio) ? ratio <= r.def.target : false;
  }
  return {
    name: r.def.name,
    metric: r.def.label,
    unit: r.def.unit,
    distribution: d,
    wharf: w,
    ratio,
    target,
    met,
    samples: r.samples,
    ...(r.error ? { error: r.error } : {}),
  };
}

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 's') return `${v.toFixed(2)} s`;
  if (v >= 1000) return `${Math.round(v).toLocaleString('en-US')} ${unit}`;
  if (v >= 100) return `${v.toFixed(0)} ${unit}`;
  return `${v.toFixed(1)} ${unit}`;
}

export function renderTable(rows: Summary[]): string {
  const header = ['metric', 'Distribution', 'Wharf', 'ratio W/D', 'target', 'met?'];
  const body = rows.map((s) => [
    s.metric,
    fmt(s.distribution, s.unit),
    s.error && !Number.isFinite(s.wharf) ? 'ERROR' : fmt(s.wharf, s.unit),
    Number.isFinite(s.ratio) ? `${s.ratio.toFixed(2)}x` : '-',
    s.target,
    s.met === null ? '' : s.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    '| ' + cells.map((c, i) => (i === 0 || i >= 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  const sep = '|' + widths.map((w, i) => (i === 0 || i >= 4 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|';
  const errors = rows.filter((s) => s.error).map((s) => `  ${s.name}: ${s.error}`);
  return [line(header), sep, ...body.map(line), ...(errors.length ? ['', 'errors:', ...errors] : [])].join('\n');
}
