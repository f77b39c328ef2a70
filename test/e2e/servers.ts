// Registry servers under test (Wharf and the reference) and a recording proxy.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { HTTP_SECRET, ROOT, TARGET, liveChildren, requireTools, sleep, tail, tempDir } from './process.js';
// ------------------------------------------------------------------------------------------------
// registry servers

export interface RegistryServer {
  kind: 'wharf' | 'reference';
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, for image references */
  host: string;
  port: number;
  dataDir: string;
  configPath: string;
  logPath: string;
  pid: number;
  /** SIGTERM, wait (SIGKILL after 10 s) */
  stop(): Promise<void>;
  /** SIGKILL, wait */
  kill(): Promise<void>;
  /** the last lines of the server's log */
  logTail(lines?: number): string;
}

export interface StartOptions {
  /** the storage root (default: a new temp dir) */
  dataDir?: string;
  /** default: a free port */
  port?: number;
  /** storage.maintenance.readonly.enabled */
  readOnly?: boolean;
  /** where config and log go (default: a new temp dir) */
  workDir?: string;
  /** driver lines under `storage:` instead of the filesystem driver, e.g. ['  s3:', '    bucket: b'] */
  storage?: string[];
  /** top-level lines appended to the config, e.g. ['middleware:', '  storage:', ...] */
  extraConfig?: string[];
  /** extra environment variables for the server process (e.g. OTEL_*) */
  env?: Record<string, string>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Distribution's config format; Wharf reads the same file. */
export function registryConfig(dataDir: string, port: number, readOnly = false, storage?: string[], extraConfig: string[] = []): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    'storage:',
    ...(storage ?? ['  filesystem:', `    rootdirectory: ${dataDir}`]),
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    ...(readOnly ? ['    readonly:', '      enabled: true'] : []),
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${HTTP_SECRET}`,
    ...extraConfig,
    '',
  ].join('\n');
}

async function startServer(kind: 'wharf' | 'reference', opts: StartOptions): Promise<RegistryServer> {
  if (kind === 'reference') requireTools('docker-registry');
  const workDir = opts.workDir ?? tempDir(kind);
  const dataDir = opts.dataDir ?? path.join(workDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const configPath = path.join(workDir, `${kind}-${port}.yml`);
  fs.writeFileSync(configPath, registryConfig(dataDir, port, opts.readOnly, opts.storage, opts.extraConfig));
  const logPath = path.join(workDir, `${kind}-${port}.log`);
  const logFd = fs.openSync(logPath, 'a');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // REGISTRY_* would override the config file; AWS_CA_BUNDLE makes distribution's aws-sdk panic
    if (v !== undefined && !k.startsWith('REGISTRY_') && k !== 'AWS_CA_BUNDLE') env[k] = v;
  }
  Object.assign(env, opts.env);
  const [cmd, args] =
    kind === 'wharf'
      ? [process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', configPath]]
      : ['docker-registry', ['serve', configPath]];
  const child = spawn(cmd, args as string[], { cwd: ROOT, env, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  child.unref();
  liveChildren.add(child);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      liveChildren.delete(child);
      resolve();
    });
    child.on('error', (e) => {
      exited = { code: -1, signal: null };
      fs.appendFileSync(logPath, `\n[e2e] spawn error: ${e.message}\n`);
      liveChildren.delete(child);
      resolve();
    });
  });
  const logTail = (lines = 30) => {
    try {
      const text = fs.readFileSync(logPath, 'utf8');
      return tail(text.split('\n').map((l) => (l.length > 400 ? l.slice(0, 400) + '...' : l)).join('\n'), lines);
    } catch {
      return '';
    }
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  let last = '';
  for (;;) {
    if (exited) {
      const e = exited as { code: number | null; signal: NodeJS.Signals | null };
      throw new Error(
        `${kind} registry exited during start-up (code ${e.code}, signal ${e.signal}); ` +
          `command: ${[cmd, ...(args as string[])].join(' ')}\nconfig:\n${registryConfig(dataDir, port, opts.readOnly, opts.storage, opts.extraConfig)}` +
          `--- log ${logPath} ---\n${logTail()}`,
      );
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) break; // 401: up, with authentication on
      last = `GET /v2/ answered ${res.status}`;
    } catch (e) {
      last = `GET /v2/ failed: ${(e as Error).message}`;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${kind} registry did not answer 200 on ${url}/v2/ within 30 s (${last})\n--- log ---\n${logTail()}`);
    }
    await sleep(100);
  }
  const waitExit = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      void exitPromise.then(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  return {
    kind,
    url,
    host: `127.0.0.1:${port}`,
    port,
    dataDir,
    configPath,
    logPath,
    pid: child.pid ?? -1,
    logTail,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      if (!(await waitExit(10_000))) {
        child.kill('SIGKILL');
        await exitPromise;
      }
    },
    async kill() {
      if (exited) return;
      child.kill('SIGKILL');
      await exitPromise;
    },
  };
}

/** Starts `node bin/wharf.js serve CONFIG` and waits until GET /v2/ answers 200 (401 with `auth`). */
export function startWharf(opts: StartOptions = {}): Promise<RegistryServer> {
  return startServer('wharf', opts);
}

/** Starts the reference registry (`docker-registry serve CONFIG`) on dataDir, same config format. */
export function startReference(dataDir?: string, opts: StartOptions = {}): Promise<RegistryServer> {
  return startServer('reference', { ...opts, dataDir: dataDir ?? opts.dataDir });
}

/** Starts the registry under test: Wharf, or the reference when WHARF_E2E_TARGET=reference. */
export function startTarget(opts: StartOptions = {}): Promise<RegistryServer> {
  return startServer(TARGET, opts);
}

// ------------------------------------------------------------------------------------------------
// recording reverse proxy: lets a test see which requests a client made (e.g. cross-repo mounts)

export interface RecordedRequest {
  method: string;
  url: string;
  status: number;
}
export interface RecordingProxy {
  url: string;
  host: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startRecordingProxy(targetPort: number): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (ures) => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', status: ures.statusCode ?? 0 });
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      },
    );
    up.on('error', (e) => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', status: 502 });
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${e.message}`);
    });
    req.pipe(up);
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

