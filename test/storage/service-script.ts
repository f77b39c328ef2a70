/**
 * Runs one of the project's scripts/services/*-start.sh (idempotent, locked) and returns the
 * KEY=value lines it prints, with how long it took.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function startService(
  script: string,
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<{ vars: Record<string, string>; startMs: number }> {
  const t0 = Date.now();
  const path = resolve(import.meta.dirname, '../../../scripts/services', script);
  const { stdout } = await run('bash', [path], { env: opts.env, timeout: opts.timeoutMs, maxBuffer: 1 << 20 });
  const vars = Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { vars, startMs: Date.now() - t0 };
}

/** scripts/services/ceph-rgw-start.sh, the one RGW behind both the S3 and the Swift tests (AWS_CA_BUNDLE left out of its environment). */
export function startCephRgw(): Promise<{ vars: Record<string, string>; startMs: number }> {
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  return startService('ceph-rgw-start.sh', { env, timeoutMs: 180_000 });
}
