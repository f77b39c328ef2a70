// In-process Wharf with `notifications` configured, over a temp filesystem root.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { startRegistry, type RegistrySettings, type StartedRegistry } from '../../src/cli/start.js';
import type { EndpointSettings, NotificationSettings } from '../../src/notifications/index.js';
import { makeSettings } from '../server/helpers.js';

export interface NotifyingServer {
  url: string;
  port: number;
  dir: string;
  started: StartedRegistry;
  close(): Promise<void>;
}

/** An endpoint with Distribution's defaults, overridden by `over`. */
export function endpoint(url: string, over: Partial<EndpointSettings> = {}): EndpointSettings {
  return { name: 'hook', url, headers: {}, timeout: 1000, threshold: 10, backoff: 1000, ignoredMediaTypes: [], ignoredActions: [], ...over };
}

export interface NotifyingOpts {
  endpoints: EndpointSettings[];
  includeReferences?: boolean;
  /** Reuse a data dir (a restart); a fresh temp dir otherwise (removed on close). */
  dir?: string;
  instance?: string;
  timing?: NotificationSettings['timing'];
}

export async function startNotifying(opts: NotifyingOpts): Promise<NotifyingServer> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-notify-'));
  const settings: RegistrySettings = {
    ...makeSettings({ dir }),
    notifications: { includeReferences: opts.includeReferences ?? false, endpoints: opts.endpoints, instance: opts.instance, timing: opts.timing },
  };
  const started = await startRegistry(settings);
  return {
    url: started.url,
    port: started.port,
    dir,
    started,
    async close() {
      await started.close();
      if (!opts.dir) await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** The batch files queued under a filesystem root, as {path, ids}. */
export function queuedBatches(dir: string): Array<{ file: string; ids: string[] }> {
  const root = path.join(dir, 'wharf', 'notifications');
  const out: Array<{ file: string; ids: string[] }> = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (path.basename(path.dirname(path.dirname(p))) === 'endpoints') {
        out.push({ file: p, ids: (JSON.parse(fs.readFileSync(p, 'utf8')).events as Array<{ id: string }>).map((x) => x.id) });
      }
    }
  };
  if (fs.existsSync(root)) walk(root);
  return out.sort((a, b) => (path.basename(a.file) < path.basename(b.file) ? -1 : 1));
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
