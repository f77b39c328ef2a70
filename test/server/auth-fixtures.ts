// Fixtures for the auth tests: a small PKI made with the openssl command (root CA → intermediate CA →
// token-signing leaf, plus a rogue CA outside the bundle), JWT signing with jose, a test token issuer
// (an HTTP server answering the realm URL with {"token": …} for the scopes it grants), a logger that keeps
// its lines, and a registry started in-process with an `auth` section.
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { pino, type Logger } from 'pino';
import { startRegistry } from '../../src/cli/start.js';
import type { AuthSettings } from '../../src/server/auth/index.js';
import { OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, makeSettings, request, sha256, type TestServer } from './helpers.js';

export interface Pki {
  dir: string;
  /** The bundle the registry trusts (root CA only). */
  bundle: string;
  /** Signing key of the leaf, and the x5c chain leaf → intermediate (base64 DER). */
  leafKey: KeyObject;
  x5c: string[];
  /** The root CA's own key (its certificate is in the bundle: tokens signed with it may name it by kid). */
  rootKey: KeyObject;
  rootCert: X509Certificate;
  /** A CA not in the bundle, with a leaf of its own. */
  rogueKey: KeyObject;
  rogueX5c: string[];
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function derBase64(pemFile: string): string {
  return new X509Certificate(fs.readFileSync(pemFile)).raw.toString('base64');
}

/** Make a CA (self-signed) or a certificate signed by `issuer`, EC P-256, in `dir`. */
function makeCert(dir: string, name: string, opts: { ca: boolean; issuer?: string }): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, opts.ca ? 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n' : 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n');
  if (!opts.issuer) {
    openssl(['req', '-new', '-x509', '-key', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`, '-extensions', 'v3', '-config', writeReqConfig(dir, ext)], dir);
    return;
  }
  openssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${opts.issuer}.pem`, '-CAkey', `${opts.issuer}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', ext], dir);
}

function writeReqConfig(dir: string, ext: string): string {
  const cfg = path.join(dir, 'req.cnf');
  fs.writeFileSync(cfg, `[req]\ndistinguished_name=dn\n[dn]\n[v3]\n${fs.readFileSync(ext, 'utf8')}`);
  return cfg;
}

export function makePki(): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-pki-'));
  makeCert(dir, 'root', { ca: true });
  makeCert(dir, 'intermediate', { ca: true, issuer: 'root' });
  makeCert(dir, 'signer', { ca: false, issuer: 'intermediate' });
  makeCert(dir, 'rogue', { ca: true });
  makeCert(dir, 'rogue-signer', { ca: false, issuer: 'rogue' });
  const key = (n: string) => createPrivateKey(fs.readFileSync(path.join(dir, `${n}.key`)));
  return {
    dir,
    bundle: path.join(dir, 'root.pem'),
    leafKey: key('signer'),
    x5c: [derBase64(path.join(dir, 'signer.pem')), derBase64(path.join(dir, 'intermediate.pem'))],
    rootKey: key('root'),
    rootCert: new X509Certificate(fs.readFileSync(path.join(dir, 'root.pem'))),
    rogueKey: key('rogue-signer'),
    rogueX5c: [derBase64(path.join(dir, 'rogue-signer.pem'))],
  };
}

export interface AccessClaim {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenSpec {
  key: KeyObject;
  header: Record<string, unknown>;
  iss?: string;
  aud?: string | string[];
  sub?: string;
  access?: AccessClaim[];
  /** seconds from now */
  exp?: number;
  nbf?: number;
  noExp?: boolean;
}

export async function signToken(t: TokenSpec): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ access: t.access ?? [] })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', ...t.header } as { alg: string })
    .setIssuer(t.iss ?? 'test-issuer')
    .setAudience(t.aud ?? 'test-registry')
    .setSubject(t.sub ?? 'alice')
    .setIssuedAt(now)
    .setNotBefore(t.nbf !== undefined ? now + t.nbf : now)
    .setJti(Math.random().toString(36).slice(2));
  if (!t.noExp) jwt.setExpirationTime(now + (t.exp ?? 300));
  return jwt.sign(t.key);
}

/** Parse `repository:a/b:pull,push` scopes (space-separated, possibly repeated params). */
export function parseScopes(scopes: string[]): AccessClaim[] {
  const out: AccessClaim[] = [];
  for (const s of scopes.flatMap((x) => x.split(' ')).filter(Boolean)) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first < 0 || last === first) continue;
    out.push({ type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',') });
  }
  return out;
}

export interface TokenIssuer {
  url: string;
  /** The realm to configure. */
  realm: string;
  requests: { user: string; scopes: string[] }[];
  close(): Promise<void>;
}

/**
 * The test token issuer: GET /token?service=…&scope=… with optional basic credentials. Unknown users or
 * wrong passwords get 401; `grant(user, wanted)` decides what goes in the token (anonymous is user "").
 */
export async function startTokenIssuer(opts: {
  pki: Pki;
  users: Record<string, string>;
  grant: (user: string, wanted: AccessClaim) => string[];
  service?: string;
  issuer?: string;
}): Promise<TokenIssuer> {
  const requests: TokenIssuer['requests'] = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      let user = '';
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const [u, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
        if (opts.users[u!] === undefined || opts.users[u!] !== rest.join(':')) {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end('{"details":"bad credentials"}');
          return;
        }
        user = u!;
      }
      const scopes = url.searchParams.getAll('scope');
      requests.push({ user, scopes });
      const access = parseScopes(scopes)
        .map((w) => ({ ...w, actions: opts.grant(user, w) }))
        .filter((a) => a.actions.length > 0);
      const token = await signToken({
        key: opts.pki.leafKey,
        header: { x5c: opts.pki.x5c },
        iss: opts.issuer ?? 'test-issuer',
        aud: url.searchParams.get('service') ?? opts.service ?? 'test-registry',
        sub: user,
        access,
      });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
    })().catch(() => {
      res.writeHead(500);
      res.end();
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    realm: `${url}/token`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface CapturedLog {
  log: Logger;
  lines: () => string[];
  text: () => string;
}

export function captureLog(level = 'debug'): CapturedLog {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const log = pino({ level }, stream);
  return { log, lines: () => lines, text: () => lines.join('\n') };
}

/** Wharf in-process on 127.0.0.1:0 (inmemory storage) with this `auth` section. */
export async function startAuthServer(auth: AuthSettings, log: Logger): Promise<TestServer> {
  const settings = { ...makeSettings({ inmemory: true }), auth };
  const started = await startRegistry(settings, log);
  return { url: started.url, port: started.port, started, settings, close: () => started.close() };
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Push a one-layer OCI image with these request headers (credentials); returns the manifest digest. */
export async function pushAs(server: { port: number }, headers: Record<string, string>, name: string, tag: string): Promise<{ digest: string; layer: string }> {
  const blob = async (data: Buffer): Promise<string> => {
    const digest = sha256(data);
    const res = await request(server, 'POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, { headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: data });
    if (res.status !== 201) throw new Error(`blob push: ${res.status} ${res.text}`);
    return digest;
  };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag }));
  const layer = Buffer.from(`layer of ${name}:${tag} ${Math.random()}`);
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: await blob(config), size: config.length },
    layers: [{ mediaType: OCI_LAYER, digest: await blob(layer), size: layer.length }],
  };
  const body = Buffer.from(JSON.stringify(doc));
  const res = await request(server, 'PUT', `/v2/${name}/manifests/${tag}`, { headers: { ...headers, 'Content-Type': OCI_MANIFEST }, body });
  if (res.status !== 201) throw new Error(`manifest push: ${res.status} ${res.text}`);
  return { digest: sha256(body), layer: doc.layers[0]!.digest };
}
