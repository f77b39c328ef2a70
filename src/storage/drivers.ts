/**
 * The storage drivers by configuration name. Each is loaded when chosen, so a filesystem
 * registry never loads a cloud SDK (start-up time and memory), and adding a driver is one line.
 */
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { StorageDriver } from './driver.js';

/** What a driver may use besides its own parameters (the offline commands pass no log). */
export interface DriverContext {
  log?: Logger;
  redirect?: boolean;
  /** A one-shot command that owns the process (garbage-collect): the filesystem driver may block the event loop. */
  offline?: boolean;
}

export type DriverFactory = (options: Record<string, unknown>, context?: DriverContext) => Promise<StorageDriver>;

export const DRIVERS: Record<string, DriverFactory> = {
  filesystem: async (o, c) => {
    const options = { rootdirectory: resolve(String(o.rootdirectory ?? '/var/lib/registry')) };
    if (c?.offline) return new (await import('./filesystem-offline.js')).OfflineFilesystemDriver(options);
    return new (await import('./filesystem.js')).FilesystemDriver(options);
  },
  inmemory: async () => new (await import('./inmemory.js')).InMemoryDriver(),
  s3: async (o, c) => (await import('./s3.js')).S3Driver.fromOptions(o, { log: c?.log, redirect: c?.redirect }),
  azure: async (o, c) => (await import('./azure.js')).AzureDriver.fromOptions(o, { log: c?.log, redirect: c?.redirect }),
  gcs: async (o, c) => (await import('./gcs.js')).GcsDriver.fromOptions(o, { log: c?.log, redirect: c?.redirect }),
  swift: async (o, c) => (await import('./swift.js')).SwiftDriver.connected(o, { log: c?.log, redirect: c?.redirect }),
  oss: async (o, c) => (await import('./oss.js')).OssDriver.fromOptions(o, { log: c?.log, redirect: c?.redirect }),
};

/** The configured driver; a name without a driver is a configuration error naming the key. */
export async function makeDriver(name: string, options: Record<string, unknown>, context?: DriverContext): Promise<StorageDriver> {
  const factory = DRIVERS[name];
  if (!factory) throw new Error(`storage.${name}: not supported yet by this version of Wharf`);
  return factory(options, context);
}
