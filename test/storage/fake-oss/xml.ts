/**
 * The XML of the fake OSS server: response documents as OSS's API reference shows them, and the
 * two request bodies it reads (CompleteMultipartUpload, Delete), which are flat enough for a
 * small reader.
 */

export function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function unescape(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#39;/g, "'")
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');
}

/** A value is text; an array repeats the element; an object nests; undefined leaves it out. */
export type XmlValue = string | number | boolean | undefined | XmlNode | XmlNode[] | string[];
export interface XmlNode {
  [name: string]: XmlValue;
}

function render(name: string, value: XmlValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return (value as XmlValue[]).map((v) => render(name, v)).join('');
  if (typeof value === 'object') return `<${name}>${Object.entries(value).map(([k, v]) => render(k, v)).join('')}</${name}>`;
  return `<${name}>${escape(String(value))}</${name}>`;
}

/** A whole response document with one root element. */
export function document(root: string, body: XmlNode): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${render(root, body)}\n`;
}

/** The text of every `<name>` element directly inside each `<parent>` element, in order. */
export function elements(xml: string, parent: string, names: readonly string[]): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const m of xml.matchAll(new RegExp(`<${parent}>([\\s\\S]*?)</${parent}>`, 'g'))) {
    const entry: Record<string, string> = {};
    for (const name of names) {
      const inner = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(m[1]!);
      if (inner) entry[name] = unescape(inner[1]!);
    }
    out.push(entry);
  }
  return out;
}

/** The text of the first `<name>` element, or undefined. */
export function text(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? unescape(m[1]!) : undefined;
}

/** Whether the body is a document whose root element is `root` (declaration and blanks allowed). */
export function hasRoot(xml: string, root: string): boolean {
  return new RegExp(`^\\s*(<\\?xml[^>]*\\?>\\s*)?<${root}(\\s[^>]*)?>[\\s\\S]*</${root}>\\s*$`).test(xml);
}
