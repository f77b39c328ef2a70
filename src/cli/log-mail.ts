/**
 * `log.hooks` of type `mail`: a mail for every log entry at one of the hook's levels, as
 * Distribution's logrus hook sends it (subject `[<level>] <smtp host>: <message>`, the message and
 * the entry's fields in a plain-text body, to every `to` address). Sending never blocks or fails
 * logging: mails wait in a short queue, one goes out at a time, and a failure is reported on
 * stderr (not through the logger, which would mail about the mail). The password is never logged.
 */
import nodemailer, { type Transporter } from 'nodemailer';

export interface MailHookSettings {
  levels: string[];
  smtp: { addr: string; username: string; password: string; insecure: boolean };
  from: string;
  to: string[];
}

/** logrus level names (Distribution's configuration) → pino's. */
const LEVEL_ALIASES: Record<string, string> = { warning: 'warn', panic: 'fatal' };
const QUEUE_MAX = 100;

export class MailHook {
  private readonly levels: Set<string>;
  private readonly host: string;
  private readonly transport: Transporter;
  private readonly queue: { subject: string; text: string }[] = [];
  private sending: Promise<void> | null = null;
  private dropped = 0;

  /** Throws a message naming `key` (e.g. `log.hooks[0]`) when the settings cannot work. */
  constructor(
    private readonly settings: MailHookSettings,
    key: string,
    private readonly errors: NodeJS.WritableStream = process.stderr,
  ) {
    const m = /^(.+):(\d+)$/.exec(settings.smtp.addr);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new Error(`${key}.options.smtp.addr: expected host:port, got ${JSON.stringify(settings.smtp.addr)}`);
    }
    if (settings.to.length === 0) throw new Error(`${key}.options.to: at least one address is needed`);
    if (!settings.from) throw new Error(`${key}.options.from: required`);
    if (settings.levels.length === 0) throw new Error(`${key}.levels: name the levels to mail (e.g. [error, fatal])`);
    this.levels = new Set(settings.levels.map((l) => LEVEL_ALIASES[l.toLowerCase()] ?? l.toLowerCase()));
    this.host = m[1]!.replace(/^\[(.*)\]$/, '$1');
    const port = Number(m[2]);
    this.transport = nodemailer.createTransport({
      host: this.host,
      port,
      secure: port === 465,
      auth: settings.smtp.username ? { user: settings.smtp.username, pass: settings.smtp.password } : undefined,
      // `insecure`: accept a server certificate that does not verify (and plain connections).
      tls: { rejectUnauthorized: !settings.smtp.insecure },
      ignoreTLS: settings.smtp.insecure && !settings.smtp.username,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
  }

  wants(level: string): boolean {
    return this.levels.has(level);
  }

  /** Queue a mail for a pino log entry (already parsed). */
  send(entry: Record<string, unknown>): void {
    const { level, msg, time, ...fields } = entry;
    const subject = `[${String(level)}] ${this.host}: ${String(msg ?? '')}`.replace(/[\r\n]+/g, ' ');
    const lines = [String(msg ?? ''), '', ...Object.keys(fields).sort().map((k) => `${k}: ${render(fields[k])}`)];
    if (time !== undefined) lines.push(`time: ${String(time)}`);
    if (this.queue.length >= QUEUE_MAX) {
      this.dropped++;
      return;
    }
    this.queue.push({ subject, text: lines.join('\n') + '\n' });
    this.sending ??= this.drain().finally(() => (this.sending = null));
  }

  private async drain(): Promise<void> {
    for (let mail = this.queue.shift(); mail; mail = this.queue.shift()) {
      try {
        await this.transport.sendMail({ from: this.settings.from, to: this.settings.to, subject: mail.subject, text: mail.text });
      } catch (err) {
        this.errors.write(`log.hooks mail: sending to ${this.settings.smtp.addr} failed: ${(err as Error).message}\n`);
      }
      if (this.dropped > 0) {
        this.errors.write(`log.hooks mail: ${this.dropped} mails dropped (more than ${QUEUE_MAX} waiting)\n`);
        this.dropped = 0;
      }
    }
  }

  /** Wait (at most `ms`) for queued mails to go out, then close the transport. */
  async close(ms = 5000): Promise<void> {
    if (this.sending) await Promise.race([this.sending, new Promise((r) => setTimeout(r, ms).unref())]);
    this.transport.close();
  }
}

function render(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
