/**
 * `wharf htpasswd FILE USER`: add USER to an htpasswd file, or replace its entry, with a bcrypt hash
 * (cost 10). The password is read from standard input when it is not a terminal (the first line), or
 * asked for twice without echo. The file is replaced atomically (other lines kept as they are) and a new
 * file is created with mode 0600. Replaces `docker run --entrypoint htpasswd registry:2 -Bbn USER PASS`.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import { BCRYPT_COST } from '../server/auth/htpasswd.js';

export const HTPASSWD_USAGE = `Usage: wharf htpasswd FILE USER
  Add USER to the htpasswd FILE (created when missing) or change its password, with a bcrypt hash.
  The password is read from standard input when it is not a terminal (first line), else asked for.`;

export async function htpasswdCommand(args: string[]): Promise<number> {
  if (args.length !== 2 || args.some((a) => a === '-h' || a === '--help')) {
    console.error(HTPASSWD_USAGE);
    return args.some((a) => a === '-h' || a === '--help') ? 0 : 2;
  }
  const [file, user] = args as [string, string];
  if (user === '' || /[:\r\n]/.test(user) || user.trim() !== user) {
    console.error('wharf htpasswd: the user name must be non-empty, without ":", line breaks or surrounding spaces');
    return 2;
  }
  const password = process.stdin.isTTY ? await promptTwice() : await readFirstLine(process.stdin);
  if (password === undefined) return 1;
  if (password === '') {
    console.error('wharf htpasswd: empty password refused');
    return 1;
  }
  if (Buffer.byteLength(password) > 72) {
    console.error('wharf htpasswd: bcrypt uses at most 72 bytes of a password: choose a shorter one');
    return 1;
  }
  const hash = await bcrypt.hash(password, BCRYPT_COST);
  const updated = await upsertEntry(file, user, hash);
  console.error(`${updated ? 'Updating' : 'Adding'} password for user ${user} in ${file}`);
  return 0;
}

/** Write `user:hash` in place of the user's entries (or at the end); true when the user existed. */
export async function upsertEntry(file: string, user: string, hash: string): Promise<boolean> {
  let text = '';
  let mode = 0o600;
  try {
    text = await fsp.readFile(file, 'utf8');
    mode = (await fsp.stat(file)).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  }
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  let found = false;
  const out: string[] = [];
  for (const line of lines) {
    const t = line.trim();
    const colon = t.indexOf(':');
    if (!t.startsWith('#') && colon >= 0 && t.slice(0, colon) === user) {
      if (!found) out.push(`${user}:${hash}`);
      found = true;
    } else out.push(line);
  }
  if (!found) out.push(`${user}:${hash}`);
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, `${out.join('\n')}\n`, { mode });
  await fsp.chmod(tmp, mode);
  await fsp.rename(tmp, file);
  return found;
}

function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (b: Buffer) => parts.push(b));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(parts).toString('utf8').split('\n')[0]!.replace(/\r$/, '')));
  });
}

async function promptTwice(): Promise<string | undefined> {
  const first = await promptHidden('New password: ');
  const second = await promptHidden('Re-type new password: ');
  if (first !== second) {
    console.error('wharf htpasswd: the passwords do not match');
    return undefined;
  }
  return first;
}

/** Read a line from the terminal in raw mode, echoing nothing. */
function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u0004') return done();
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
