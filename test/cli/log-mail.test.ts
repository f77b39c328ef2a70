// log.hooks of type mail, delivered to a real SMTP server (smtp-server) on 127.0.0.1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { makeLogger, type LogHookSettings } from '../../src/cli/logging.js';

interface Received {
  from: string;
  to: string[];
  user?: string;
  data: string;
}

describe('log.hooks mail', () => {
  let server: SMTPServer;
  let port = 0;
  const inbox: Received[] = [];
  let waiters: (() => void)[] = [];

  before(async () => {
    server = new SMTPServer({
      secure: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authOptional: true,
      logger: false,
      onAuth(auth, _session, cb) {
        if (auth.username === 'alice' && auth.password === 's3cret-pw') cb(null, { user: 'alice' });
        else cb(new Error('invalid credentials'));
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          inbox.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            user: session.user as string | undefined,
            data: Buffer.concat(chunks).toString('utf8'),
          });
          for (const w of waiters) w();
          waiters = [];
          cb();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as { port: number }).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const mailHook = (levels: string[], extra: Partial<LogHookSettings['mail']['smtp']> = {}): LogHookSettings => ({
    index: 0,
    type: 'mail',
    mail: {
      levels,
      smtp: { addr: `127.0.0.1:${port}`, username: 'alice', password: 's3cret-pw', insecure: true, ...extra },
      from: 'registry@example.test',
      to: ['ops@example.test', 'oncall@example.test'],
    },
  });

  async function waitForMail(count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (inbox.length < count) {
      assert.ok(Date.now() < deadline, `expected ${count} mails, got ${inbox.length}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  it('mails entries at the configured levels only, as Distribution words them, with SMTP auth', async () => {
    inbox.length = 0;
    const out = new PassThrough();
    let logged = '';
    out.on('data', (c: Buffer) => (logged += c.toString()));
    const log = makeLogger({ level: 'info', formatter: 'text', fields: { service: 'registry' }, hooks: [mailHook(['error', 'warning'])] }, out);
    log.info('just information');
    log.warn({ path: '/v2/app' }, 'disk almost full');
    log.error({ code: 'E42' }, 'storage backend failed');
    await waitForMail(2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(inbox.length, 2, 'info is not mailed');
    const [warn, error] = inbox.sort((a, b) => (a.data.includes('[warn]') ? -1 : b.data.includes('[warn]') ? 1 : 0));
    assert.equal(error!.user, 'alice');
    assert.equal(error!.from, 'registry@example.test');
    assert.deepEqual(error!.to, ['ops@example.test', 'oncall@example.test']);
    assert.match(error!.data, /^Subject: \[error\] 127\.0\.0\.1: storage backend failed$/m);
    assert.match(error!.data, /^code: E42$/m);
    assert.match(error!.data, /^service: registry$/m);
    assert.match(warn!.data, /^Subject: \[warn\] 127\.0\.0\.1: disk almost full$/m);
    assert.match(warn!.data, /^path: \/v2\/app$/m);
    // The log itself still comes out as usual, and the SMTP password is nowhere in it.
    assert.match(logged, /msg="storage backend failed"/);
    assert.doesNotMatch(logged, /s3cret-pw/);
  });

  it('a refused login or an unreachable server never breaks logging; the failure is reported on stderr', async () => {
    const out = new PassThrough();
    out.resume();
    const log = makeLogger({ level: 'info', formatter: 'json', fields: {}, hooks: [mailHook(['error'], { password: 'wrong' })] }, out);
    const before = inbox.length;
    const stderrWrites: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      stderrWrites.push(String(chunk));
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
      log.error('this one cannot be mailed');
      const deadline = Date.now() + 10_000;
      while (!stderrWrites.some((w) => w.includes('log.hooks mail: sending to')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    } finally {
      process.stderr.write = original;
    }
    assert.ok(stderrWrites.some((w) => /log\.hooks mail: sending to 127\.0\.0\.1:\d+ failed/.test(w)), stderrWrites.join(''));
    assert.ok(!stderrWrites.join('').includes('wrong'), 'the password is not printed');
    assert.equal(inbox.length, before);
  });

  it('configuration errors name the key', () => {
    const bad = (mail: Partial<LogHookSettings['mail']>, type = 'mail') => () =>
      makeLogger({ level: 'info', formatter: 'text', fields: {}, hooks: [{ index: 2, type, mail: { ...mailHook(['error']).mail, ...mail } }] }, new PassThrough());
    assert.throws(bad({ smtp: { addr: 'mailhost', username: '', password: '', insecure: false } }), /log\.hooks\[2\]\.options\.smtp\.addr: expected host:port, got "mailhost"/);
    assert.throws(bad({ to: [] }), /log\.hooks\[2\]\.options\.to: at least one address/);
    assert.throws(bad({ from: '' }), /log\.hooks\[2\]\.options\.from: required/);
    assert.throws(bad({ levels: [] }), /log\.hooks\[2\]\.levels/);
    assert.throws(bad({}, 'slack'), /log\.hooks\[2\]\.type: unknown hook type "slack"/);
  });
});
