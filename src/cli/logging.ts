/**
 * Logs in Distribution's three formats (`log.formatter`): logrus's `text`
 * (time="…" level=info msg="…" key=value), `json` ({"level":"info","msg":…,"time":…})
 * and `logstash` ({"@timestamp":…,"@version":"1","level":…,"message":…}). pino writes
 * JSON; the text and logstash forms are rewritten line by line on the way out.
 */
import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger } from 'pino';
import { MailHook, type MailHookSettings } from './log-mail.js';

/** One `log.hooks` entry that is not disabled; `index` is its place in the list (for messages). */
export interface LogHookSettings {
  index: number;
  type: string;
  mail: MailHookSettings;
}

export interface LogSettings {
  level: string;
  formatter: string;
  fields: Record<string, unknown>;
  hooks?: LogHookSettings[];
}

function logfmtValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return /^[A-Za-z0-9_.\/:@+-]+$/.test(text) ? text : JSON.stringify(text);
}

export function toText(entry: Record<string, unknown>): string {
  const { time, level, msg, ...rest } = entry;
  const parts = [`time=${logfmtValue(time)}`, `level=${String(level)}`, `msg=${JSON.stringify(String(msg ?? ''))}`];
  for (const key of Object.keys(rest).sort()) parts.push(`${key}=${logfmtValue(rest[key])}`);
  return parts.join(' ');
}

export function toLogstash(entry: Record<string, unknown>): string {
  const { time, msg, ...rest } = entry;
  return JSON.stringify({ '@timestamp': time, '@version': '1', message: msg ?? '', ...rest });
}

/** A destination that reformats each JSON line pino writes, and hands entries to the hooks that want them. */
function reformatting(
  format: ((entry: Record<string, unknown>) => string) | null,
  out: NodeJS.WritableStream,
  hooks: MailHook[] = [],
): DestinationStream {
  let partial = '';
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      const rendered = lines
        .filter((l) => l !== '')
        .map((l) => {
          try {
            const entry = JSON.parse(l) as Record<string, unknown>;
            for (const h of hooks) if (h.wants(String(entry.level))) h.send(entry);
            return format ? format(entry) : l;
          } catch {
            return l;
          }
        });
      if (rendered.length === 0) return done();
      out.write(`${rendered.join('\n')}\n`, () => done());
    },
  });
}

export function makeLogger(settings: LogSettings, out: NodeJS.WritableStream = process.stderr): Logger {
  const options = {
    level: settings.level === 'warning' ? 'warn' : settings.level,
    base: { ...settings.fields },
    messageKey: 'msg',
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const hooks = (settings.hooks ?? []).map((h) => {
    if (h.type !== 'mail') throw new Error(`log.hooks[${h.index}].type: unknown hook type ${JSON.stringify(h.type)} (Distribution knows "mail")`);
    return new MailHook(h.mail, `log.hooks[${h.index}]`);
  });
  if (settings.formatter === 'json' && hooks.length === 0) return pino(options, out as DestinationStream);
  const format = settings.formatter === 'json' ? null : settings.formatter === 'logstash' ? toLogstash : toText;
  return pino(options, reformatting(format, out, hooks));
}
