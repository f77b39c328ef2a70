/**
 * A small fake OpenStack Keystone for the swift driver's v2.0 and v3 auth, written from the
 * Identity API references (v2.0 POST /v2.0/tokens; v3 POST /v3/auth/tokens with the token in
 * X-Subject-Token). It checks what it is sent (user, password or API key, user domain, project by
 * id or by name within its domain, trust) and answers 401 as Keystone does when anything is off.
 * Tokens are real: it gets a v1 token from Ceph RGW and hands it out, with a service catalog in
 * which only one (region, interface) endpoint is RGW's Swift storage URL; every other endpoint
 * points back at this server, which answers 503 and counts the hit, so a driver that picks the
 * wrong endpoint fails and is seen.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RgwSwift } from './rgw-swift.js';

export const REGIONS = ['RegionOne', 'RegionTwo'] as const;
export const INTERFACES = ['public', 'internal', 'admin'] as const;
export type Interface = (typeof INTERFACES)[number];

export interface Identity {
  user: string;
  password: string;
  /** A Rackspace-style API key accepted instead of the password (v2 RAX-KSKEY:apiKeyCredentials). */
  apiKey?: string;
  userDomain: { id: string; name: string };
  project: { id: string; name: string; domain: { id: string; name: string } };
  trustId: string;
}

export interface FakeKeystone {
  /** http://127.0.0.1:PORT; v2.0 at /v2.0, v3 at /v3. */
  url: string;
  /** Auth requests as received: path, JSON body, and whether they were accepted. */
  requests: Array<{ path: string; body: any; status: number }>;
  /** Requests that reached an endpoint that is not RGW (a wrong region or interface). */
  wrongEndpointHits: string[];
  /** Which catalog endpoint is RGW's. */
  serveAt(region: string, iface: Interface): void;
  /** Hand out tokens RGW refuses (401) for the next `n` successful auths: an expired token. */
  expireNextTokens(n: number): void;
  close(): Promise<void>;
}

function unauthorized(res: ServerResponse): void {
  res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Keystone uri="http://127.0.0.1"' });
  res.end(JSON.stringify({ error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } }));
}

function sameDomain(d: any, want: { id: string; name: string }): boolean {
  return !!d && (d.id === want.id || (d.id === undefined && d.name === want.name));
}

export async function startFakeKeystone(rgw: RgwSwift, identity: Identity): Promise<FakeKeystone> {
  const requests: FakeKeystone['requests'] = [];
  const wrongEndpointHits: string[] = [];
  let real: { region: string; iface: Interface } = { region: 'RegionOne', iface: 'public' };
  let expired = 0;
  let base = '';

  const endpointURL = (region: string, iface: Interface) =>
    region === real.region && iface === real.iface ? rgw.storageURL : `${base}/not-rgw/${region}/${iface}`;

  const rgwToken = async (): Promise<string> => {
    if (expired > 0) {
      expired--;
      return `gAAAAAexpired-${Date.now()}`;
    }
    const r = await fetch(rgw.authURL, { headers: { 'X-Auth-User': rgw.user, 'X-Auth-Key': rgw.key } });
    const token = r.headers.get('x-auth-token');
    if (!token) throw new Error(`the fake Keystone could not get a token from RGW (${r.status})`);
    return token;
  };
  const expires = () => new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');

  /** Keystone v2.0: password or API-key credentials, scoped by tenantName or tenantId. */
  const v2 = async (body: any, res: ServerResponse): Promise<number> => {
    const auth = body?.auth ?? {};
    const pw = auth.passwordCredentials;
    const key = auth['RAX-KSKEY:apiKeyCredentials'];
    const userOk =
      (pw && pw.username === identity.user && pw.password === identity.password) ||
      (key && identity.apiKey !== undefined && key.username === identity.user && key.apiKey === identity.apiKey);
    const scoped = auth.tenantId !== undefined ? auth.tenantId === identity.project.id : auth.tenantName === identity.project.name;
    if (!userOk || !scoped) {
      unauthorized(res);
      return 401;
    }
    const token = await rgwToken();
    const catalog = [
      { type: 'identity', name: 'keystone', endpoints: REGIONS.map((region) => ({ region, publicURL: `${base}/v2.0`, internalURL: `${base}/v2.0`, adminURL: `${base}/v2.0` })) },
      {
        type: 'object-store',
        name: 'swift',
        endpoints: REGIONS.map((region) => ({
          region,
          tenantId: identity.project.id,
          publicURL: endpointURL(region, 'public'),
          internalURL: endpointURL(region, 'internal'),
          adminURL: endpointURL(region, 'admin'),
        })),
      },
    ];
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({
        access: {
          token: { id: token, expires: expires(), tenant: { id: identity.project.id, name: identity.project.name } },
          serviceCatalog: catalog,
          user: { id: 'u-1', name: identity.user, roles: [{ name: 'member' }] },
        },
      }),
    );
    return 200;
  };

  /** Keystone v3: password identity (a user named within a domain), scoped to a project or a trust. */
  const v3 = async (body: any, res: ServerResponse): Promise<number> => {
    const id = body?.auth?.identity ?? {};
    const user = id.password?.user ?? {};
    const userOk =
      Array.isArray(id.methods) && id.methods.includes('password') && user.name === identity.user && user.password === identity.password && sameDomain(user.domain, identity.userDomain);
    const scope = body?.auth?.scope;
    let scopeOk = scope === undefined;
    if (scope?.['OS-TRUST:trust']) scopeOk = scope['OS-TRUST:trust'].id === identity.trustId;
    else if (scope?.project) {
      const p = scope.project;
      scopeOk = p.id !== undefined ? p.id === identity.project.id : p.name === identity.project.name && sameDomain(p.domain, identity.project.domain);
    }
    if (!userOk || !scopeOk) {
      unauthorized(res);
      return 401;
    }
    const token = await rgwToken();
    const catalog = [
      { type: 'identity', id: 'k', endpoints: INTERFACES.map((iface) => ({ interface: iface, region: 'RegionOne', region_id: 'RegionOne', url: `${base}/v3` })) },
      {
        type: 'object-store',
        id: 's',
        name: 'swift',
        endpoints: REGIONS.flatMap((region) => INTERFACES.map((iface) => ({ id: `${region}-${iface}`, interface: iface, region, region_id: region, url: endpointURL(region, iface) }))),
      },
    ];
    res.writeHead(201, { 'Content-Type': 'application/json', 'X-Subject-Token': token });
    res.end(
      JSON.stringify({
        token: {
          methods: ['password'],
          expires_at: expires(),
          issued_at: new Date().toISOString(),
          user: { id: 'u-1', name: identity.user, domain: identity.userDomain },
          ...(scope?.project ? { project: { id: identity.project.id, name: identity.project.name, domain: identity.project.domain } } : {}),
          catalog: scope === undefined ? [] : catalog,
        },
      }),
    );
    return 201;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = req.url ?? '';
        if (path.startsWith('/not-rgw/')) {
          wrongEndpointHits.push(`${req.method} ${path}`);
          res.writeHead(503).end('not the endpoint you were meant to use');
          return;
        }
        let body: any = null;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          res.writeHead(400).end('{"error":{"code":400,"message":"malformed JSON"}}');
          return;
        }
        const handler = req.method === 'POST' && path === '/v2.0/tokens' ? v2 : req.method === 'POST' && path === '/v3/auth/tokens' ? v3 : null;
        if (!handler || req.headers['content-type'] !== 'application/json') {
          res.writeHead(404).end();
          requests.push({ path, body, status: 404 });
          return;
        }
        requests.push({ path, body, status: await handler(body, res) });
      })().catch((err: Error) => res.writeHead(500).end(err.message));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    requests,
    wrongEndpointHits,
    serveAt: (region, iface) => {
      real = { region, iface };
    },
    expireNextTokens: (n) => {
      expired = n;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
