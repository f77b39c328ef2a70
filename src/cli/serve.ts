/** `wharf serve [CONFIG]`: load the configuration, refuse what is not implemented, start, stop on signals. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startRegistry, type RegistrySettings } from './start.js';

// Interim reader until src/config lands: the handful of keys the server uses today.
function loadSettings(path: string | undefined): RegistrySettings {
  let doc: Record<string, any> = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read configuration file "${path}": ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    doc = (parse(text) as Record<string, any>) ?? {};
  }
  const storage = doc.storage ?? { filesystem: { rootdirectory: './data' } };
  const driverName = ['filesystem', 'inmemory'].find((d) => d in storage) ?? 'filesystem';
  return {
    storage: { name: driverName, options: storage[driverName] ?? { rootdirectory: './data' } },
    deleteEnabled: storage.delete?.enabled === true,
    http: {
      addr: process.env.REGISTRY_HTTP_ADDR ?? doc.http?.addr ?? ':5000',
      host: doc.http?.host,
      prefix: doc.http?.prefix ?? '',
      relativeurls: doc.http?.relativeurls === true,
      headers: doc.http?.headers ?? {},
    },
    log: {
      level: doc.log?.level ?? 'info',
      formatter: doc.log?.formatter ?? 'text',
      accessLog: doc.log?.accesslog?.disabled !== true,
      fields: doc.log?.fields ?? {},
    },
    catalogMaxEntries: doc.catalog?.maxentries ?? 1000,
    urlsAllow: [],
    urlsDeny: [],
  };
}

export async function serve(args: string[]): Promise<number> {
  const path = args[0] ?? process.env.REGISTRY_CONFIGURATION_PATH;
  const settings = loadSettings(path);
  const started = await startRegistry(settings);
  started.log.info({ addr: settings.http.addr, storage: settings.storage.name }, 'listening on %s', settings.http.addr);
  const stop = async (signal: string) => {
    started.log.info({ signal }, 'shutting down');
    await started.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  return new Promise<number>(() => undefined);
}
