/**
 * Storage middleware (`middleware.storage`): each entry wraps the driver built so far, in list
 * order, as Distribution applies them. Only blob redirects change: `redirect` and `cloudfront`
 * are Distribution's two; any other name is a configuration error.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../../config/errors.js';
import type { StorageDriver } from '../driver.js';
import { CLOUDFRONT_OPTIONS, CloudFrontMiddleware, isS3Driver, parseCloudFrontOptions } from './cloudfront.js';
import { AwsIpRanges } from './ip-ranges.js';
import { unknownMiddlewareMessage } from './names.js';
import { MiddlewareOptions } from './options.js';
import { parseRedirectOptions, RedirectMiddleware, REDIRECT_OPTIONS } from './redirect.js';

export interface StorageMiddlewareEntry {
  /** Position in `middleware.storage` (disabled entries included), for messages. */
  index: number;
  name: string;
  options: Record<string, unknown>;
}

export interface MiddlewareContext {
  log?: Logger;
  /** False with `storage.redirect.disable`: entries are checked, but blobs are never redirected. */
  redirect: boolean;
}

export interface WrappedStorage {
  driver: StorageDriver;
  /** Stops background work (the cloudfront IP-range refresh). */
  close(): void;
}

/** The driver wrapped by every entry. Configuration problems throw a ConfigError naming the key. */
export async function applyStorageMiddleware(driver: StorageDriver, entries: readonly StorageMiddlewareEntry[], context: MiddlewareContext): Promise<WrappedStorage> {
  const stoppers: (() => void)[] = [];
  const warn = (message: string) => context.log?.warn(message);
  let current = driver;
  try {
    for (const entry of entries) {
      const entryKey = `middleware.storage[${entry.index}]`;
      const o = new MiddlewareOptions(entryKey, entry.options ?? {});
      if (entry.name === 'redirect') {
        const settings = parseRedirectOptions(o);
        for (const key of o.unknownKeys(REDIRECT_OPTIONS)) warn(`${key}: not an option of the redirect middleware, ignored`);
        if (context.redirect) current = new RedirectMiddleware(current, settings);
      } else if (entry.name === 'cloudfront') {
        const settings = parseCloudFrontOptions(o, warn);
        for (const key of o.unknownKeys(CLOUDFRONT_OPTIONS)) warn(`${key}: not an option of the cloudfront middleware, ignored`);
        if (!context.redirect) continue;
        if (!isS3Driver(current)) {
          // Distribution does the same (per request): CloudFront URLs are made from s3 object keys only.
          warn(`${entryKey} (cloudfront): works on the s3 storage driver only, not on ${current === driver ? driver.name : 'another middleware'}; blob GETs ignore it`);
          continue;
        }
        let ranges: AwsIpRanges | null = null;
        if (settings.ipFilter) {
          ranges = new AwsIpRanges({ ...settings.ipFilter, log: context.log });
          stoppers.push(() => ranges!.stop());
          await ranges.start();
        }
        current = new CloudFrontMiddleware(current, settings, ranges, context.log);
      } else {
        throw new ConfigError(`${entryKey}.name: ${unknownMiddlewareMessage('storage', [entry.name])}`);
      }
    }
  } catch (err) {
    for (const stop of stoppers) stop();
    throw err;
  }
  if (!context.redirect && entries.length > 0) warn('middleware.storage: storage.redirect.disable is set, so blobs are served directly and the storage middleware is unused');
  return { driver: current, close: () => stoppers.forEach((stop) => stop()) };
}
