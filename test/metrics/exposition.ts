// A small parser of the Prometheus text exposition format (version 0.0.4), strict enough to catch
// malformed output: every sample belongs to a family declared by `# TYPE`, label values are
// quoted with \\, \" and \n escapes, values are Go floats (+Inf, -Inf, NaN in any letter case).
import assert from 'node:assert/strict';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** family name → counter, gauge, histogram, summary, untyped */
  types: Map<string, string>;
  help: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: [], types: new Map(), help: new Map() };
  const lines = text.split('\n');
  assert.equal(lines.at(-1), '', 'the exposition ends with a newline');
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    const where = `line ${i + 1}: ${line}`;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) continue; // a plain comment
      if (m[1] === 'TYPE') {
        assert.match(m[3]!, /^(counter|gauge|histogram|summary|untyped)$/, where);
        assert.ok(!out.types.has(m[2]!), `family declared twice: ${where}`);
        out.types.set(m[2]!, m[3]!);
      } else out.help.set(m[2]!, m[3]!);
      continue;
    }
    out.samples.push(parseSample(line, where));
  }
  for (const s of out.samples) {
    const family = familyOf(s.name, out.types);
    assert.ok(family, `sample ${s.name} has no # TYPE`);
  }
  return out;
}

function parseSample(line: string, where: string): Sample {
  const name = NAME.exec(line)?.[0];
  assert.ok(name, `metric name: ${where}`);
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    while (!rest.startsWith('}')) {
      const label = LABEL_NAME.exec(rest)?.[0];
      assert.ok(label, `label name: ${where}`);
      rest = rest.slice(label.length);
      assert.ok(rest.startsWith('="'), `label "=\\"": ${where}`);
      rest = rest.slice(2);
      let value = '';
      for (;;) {
        const c = rest[0];
        assert.ok(c !== undefined, `unterminated label value: ${where}`);
        rest = rest.slice(1);
        if (c === '"') break;
        if (c === '\\') {
          const e = rest[0];
          rest = rest.slice(1);
          value += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : assert.fail(`bad escape \\${e}: ${where}`);
        } else value += c;
      }
      assert.ok(!(label in labels), `label twice: ${where}`);
      labels[label] = value;
      if (rest.startsWith(',')) rest = rest.slice(1);
    }
    rest = rest.slice(1);
  }
  const m = /^ (\S+)(?: (-?\d+))?$/.exec(rest);
  assert.ok(m, `value: ${where}`);
  // Go's ParseFloat: special values in any letter case (the format's documentation writes "Nan").
  const raw = m[1]!;
  const special = raw.toLowerCase();
  const nan = special === 'nan';
  const value = nan ? NaN : /^\+?inf(inity)?$/.test(special) ? Infinity : /^-inf(inity)?$/.test(special) ? -Infinity : Number(raw);
  assert.ok(nan || !Number.isNaN(value), `value ${raw}: ${where}`);
  return { name, labels, value };
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created']) {
    if (name.endsWith(suffix) && types.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return undefined;
}

/** The samples named `name` whose labels include `labels`. */
export function find(e: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample named `name` with these labels (0 when there is none, as for a counter never moved). */
export function value(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = find(e, name, labels);
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples: ${JSON.stringify(found)}`);
  return found[0]?.value ?? 0;
}

/** Sum over every matching sample (e.g. a counter over all its codes). */
export function total(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return find(e, name, labels).reduce((a, s) => a + s.value, 0);
}
