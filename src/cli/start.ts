/**
 * Wiring: configuration → storage driver → registry service → HTTP server.
 * Drivers come from a map, not from import side effects.
 */
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { DEFAULT_CACHE_OPTIONS } from '../registry/cache.js';
import { Registry } from '../registry/registry.js';
import { createApp, listen, type RunningServer } from '../server/app.js';
import type { StorageDriver } from '../storage/driver.js';
import { FilesystemDriver } from '../storage/filesystem.js';
import { InMemoryDriver } from '../storage/inmemory.js';

export interface RegistrySettings {
  storage: { name: string; options: Record<string, unknown> };
  deleteEnabled: boolean;
  /** `storage.cache.blobdescriptor` is set (positive link answers are cached). */
  descriptorCache?: boolean;
  descriptorCacheEntries?: number;
  http: { addr: string; host?: string; prefix: string; relativeurls: boolean; headers: Record<string, string[]> };
  log: { level: string; formatter: string; accessLog: boolean; fields: Record<string, unknown> };
  catalogMaxEntries: number;
  urlsAllow: string[];
  urlsDeny: string[];
}

export const DRIVERS: Record<string, (options: Record<string, unknown>) => StorageDriver> = {
  filesystem: (o) => new FilesystemDriver({ rootdirectory: resolve(String(o.rootdirectory ?? '/var/lib/registry')) }),
  inmemory: () => new InMemoryDriver(),
};

export function makeLogger(settings: RegistrySettings['log']): Logger {
  return pino({
    level: settings.level,
    base: { ...settings.fields },
    ...(settings.formatter === 'text' ? { timestamp: pino.stdTimeFunctions.isoTime } : {}),
  });
}

export interface StartedRegistry {
  url: string;
  port: number;
  registry: Registry;
  log: Logger;
  close(): Promise<void>;
}

export async function startRegistry(settings: RegistrySettings, log: Logger = makeLogger(settings.log)): Promise<StartedRegistry> {
  const makeDriver = DRIVERS[settings.storage.name];
  if (!makeDriver) throw new Error(`storage driver "${settings.storage.name}" is not available`);
  const driver = makeDriver(settings.storage.options);
  const registry = new Registry(driver, {
    deleteEnabled: settings.deleteEnabled,
    cache: { ...DEFAULT_CACHE_OPTIONS, descriptors: settings.descriptorCache ?? true, descriptorEntries: settings.descriptorCacheEntries ?? 10_000 },
    manifestPolicy: { allowURLs: settings.urlsAllow.map((r) => new RegExp(r)), denyURLs: settings.urlsDeny.map((r) => new RegExp(r)) },
  });
  const handler = createApp({
    registry,
    log,
    accessLog: settings.log.accessLog,
    options: {
      host: settings.http.host,
      relativeURLs: settings.http.relativeurls,
      prefix: settings.http.prefix,
      headers: settings.http.headers,
      catalogMaxEntries: settings.catalogMaxEntries,
    },
  });
  const running: RunningServer = await listen(handler, settings.http.addr);
  const hostPart = settings.http.addr.slice(0, settings.http.addr.lastIndexOf(':')) || '127.0.0.1';
  return {
    url: `http://${hostPart === '0.0.0.0' || hostPart === '::' ? '127.0.0.1' : hostPart}:${running.port}`,
    port: running.port,
    registry,
    log,
    close: running.close,
  };
}
