/**
 * Wharf instances configured for the redis cache the way a user configures them (Distribution's
 * YAML, parsed and turned into settings by the same code as `wharf serve`), with their log lines
 * captured and their storage reads counted.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/index.js';
import { makeLogger } from '../../src/cli/logging.js';
import { settingsFromConfig } from '../../src/cli/serve.js';
import { startRegistry, type StartedRegistry } from '../../src/cli/start.js';

export interface RedisWharf {
  port: number;
  url: string;
  dir: string;
  started: StartedRegistry;
  /** Log lines (JSON), newest last. */
  logs: string[];
  /** Storage reads (stat, getContent, list) since the last reset. */
  reads: { count: number; reset(): void };
  close(): Promise<void>;
}

export function tempDataDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `wharf-redis-${label}-`));
}

/** The YAML of a filesystem registry on `dir` with `storage.cache.blobdescriptor: redis`. */
export function redisConfigYaml(dir: string, redisLines: string[]): string {
  return [
    'version: 0.1',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dir}`,
    '  delete:',
    '    enabled: true',
    '  cache:',
    '    blobdescriptor: redis',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'redis:',
    ...redisLines.map((l) => `  ${l}`),
    'http:',
    '  addr: 127.0.0.1:0',
    '',
  ].join('\n');
}

/** Start Wharf on `dir` with the redis section `redisLines` (e.g. ['addr: 127.0.0.1:6379', 'db: 1']). */
export async function startRedisWharf(dir: string, redisLines: string[]): Promise<RedisWharf> {
  const { config } = parseConfig(redisConfigYaml(dir, redisLines), {}, 'test.yml');
  const settings = settingsFromConfig(config);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const log = makeLogger({ level: 'info', formatter: 'json', fields: {} }, sink);
  const started = await startRegistry({ ...settings, log: { ...settings.log, accessLog: false } }, log);
  const reads = { count: 0, reset: () => (reads.count = 0) };
  const driver = started.registry.driver as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of ['stat', 'getContent', 'list']) {
    const original = driver[method]!.bind(driver);
    driver[method] = (...args: unknown[]) => {
      reads.count++;
      return original(...args);
    };
  }
  return { port: started.port, url: started.url, dir, started, logs, reads, close: () => started.close() };
}
