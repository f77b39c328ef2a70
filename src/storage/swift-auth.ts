/**
 * Authentication for the swift driver, the three ways Distribution's Swift client knows:
 * - v1 (TempAuth, Ceph RGW's /auth/v1.0): GET the auth URL with X-Auth-User and X-Auth-Key; the
 *   answer's X-Storage-Url and X-Auth-Token are the session.
 * - Keystone v2.0: POST <authurl>/tokens with password credentials (or Rackspace's API-key form:
 *   tried first for a password of 32 characters or more, and each form is tried when the other is
 *   refused), scoped by tenant name or id; the token is access.token.id and the storage URL comes
 *   from the service catalog's object-store entry for `region`, by `endpointtype`.
 * - Keystone v3: POST <authurl>/auth/tokens with a password identity (user domain by name or id),
 *   scoped to a trust, or a project by id, or by name within tenantdomain/tenantdomainid/domain/
 *   domainid (else the "Default" domain); the token is the X-Subject-Token header and the catalog's
 *   object-store endpoint is the one whose interface is `endpointtype` in `region`.
 */
import type { IncomingMessage } from 'node:http';
import type { SwiftSettings } from './swift-options.js';
import { errorText, readBody, send, type Agents } from './swift-http.js';

export interface SwiftSession {
  token: string;
  /** The account's URL: containers are below it. */
  storageURL: string;
  /** The project (tenant) the token is scoped to, when Keystone says. */
  tenantId?: string;
  /** When Keystone says the token expires (ms since the epoch). */
  expiresAt?: number;
}

function fail(message: string): never {
  throw new Error(`storage.swift: ${message}`);
}

function under(base: string, path: string): string {
  return base.endsWith('/') ? base + path : `${base}/${path}`;
}

async function refused(s: SwiftSettings, res: IncomingMessage): Promise<never> {
  const text = await errorText(res);
  const hint = res.statusCode === 401 ? ' (check username, password and the tenant or domain keys)' : '';
  return fail(`authentication at authurl ${s.authURL} failed: ${res.statusCode}${text ? ` ${text}` : ''}${hint}`);
}

async function json(res: IncomingMessage, s: SwiftSettings): Promise<Record<string, any>> {
  try {
    return JSON.parse((await readBody(res, 16 * 1024 * 1024)).toString('utf8')) as Record<string, any>;
  } catch {
    return fail(`the answer of authurl ${s.authURL} is not JSON`);
  }
}

function expiry(value: unknown): number | undefined {
  const t = typeof value === 'string' ? Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`) : NaN;
  return Number.isFinite(t) ? t : undefined;
}

function noEndpoint(s: SwiftSettings): never {
  const region = s.region === undefined ? 'any region' : `region ${JSON.stringify(s.region)}`;
  return fail(`the service catalog of authurl ${s.authURL} has no object-store endpoint for ${region} with endpointtype ${s.endpointType ?? 'public'}`);
}

async function v1(s: SwiftSettings, agents: Agents, userAgent: string): Promise<SwiftSession> {
  const res = await send(agents, {
    method: 'GET',
    url: s.authURL,
    headers: { 'X-Auth-User': s.username, 'X-Auth-Key': s.password, 'User-Agent': userAgent },
  });
  if (res.statusCode! < 200 || res.statusCode! > 299) return refused(s, res);
  await readBody(res, 1024 * 1024);
  const token = res.headers['x-auth-token'];
  const storageURL = res.headers['x-storage-url'];
  if (typeof token !== 'string' || typeof storageURL !== 'string' || !token || !storageURL) {
    return fail(`authurl ${s.authURL} answered without X-Auth-Token and X-Storage-Url`);
  }
  const ttl = Number(res.headers['x-auth-token-expires']);
  return { token, storageURL, expiresAt: Number.isFinite(ttl) && ttl > 0 ? Date.now() + ttl * 1000 : undefined };
}

async function v2(s: SwiftSettings, agents: Agents, userAgent: string): Promise<SwiftSession> {
  const scope = { ...(s.tenant ? { tenantName: s.tenant } : {}), ...(s.tenantId ? { tenantId: s.tenantId } : {}) };
  const forms = [
    { auth: { passwordCredentials: { username: s.username, password: s.password }, ...scope } },
    { auth: { 'RAX-KSKEY:apiKeyCredentials': { username: s.username, apiKey: s.password }, ...scope } },
  ];
  // Distribution's client guesses an API key from its length, then tries the other form once.
  if (s.password.length >= 32) forms.reverse();
  let res: IncomingMessage | null = null;
  for (const [i, form] of forms.entries()) {
    res = await send(agents, {
      method: 'POST',
      url: under(s.authURL, 'tokens'),
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'User-Agent': userAgent },
      body: Buffer.from(JSON.stringify(form)),
    });
    if (res.statusCode! >= 200 && res.statusCode! <= 299) break;
    if (i === 0 && (res.statusCode === 401 || res.statusCode === 400)) {
      await errorText(res);
      continue;
    }
    return refused(s, res);
  }
  if (res!.statusCode! < 200 || res!.statusCode! > 299) return refused(s, res!);
  const access = (await json(res!, s)).access ?? {};
  const token = access.token?.id;
  if (typeof token !== 'string' || !token) return fail(`authurl ${s.authURL} answered without access.token.id`);
  const kind = s.endpointType ?? 'public';
  let storageURL: unknown;
  search: for (const service of Array.isArray(access.serviceCatalog) ? access.serviceCatalog : []) {
    if (service?.type !== 'object-store') continue;
    for (const endpoint of Array.isArray(service.endpoints) ? service.endpoints : []) {
      if (s.region !== undefined && endpoint?.region !== s.region) continue;
      storageURL = endpoint?.[`${kind}URL`];
      break search;
    }
  }
  if (typeof storageURL !== 'string' || !storageURL) return noEndpoint(s);
  return { token, storageURL, tenantId: access.token?.tenant?.id, expiresAt: expiry(access.token?.expires) };
}

async function v3(s: SwiftSettings, agents: Agents, userAgent: string): Promise<SwiftSession> {
  const userDomain = s.domain ? { name: s.domain } : s.domainId ? { id: s.domainId } : undefined;
  let scope: Record<string, unknown> | undefined;
  if (s.trustId) {
    scope = { 'OS-TRUST:trust': { id: s.trustId } };
  } else if (s.tenantId) {
    scope = { project: { id: s.tenantId } };
  } else if (s.tenant) {
    const domain = s.tenantDomain
      ? { name: s.tenantDomain }
      : s.tenantDomainId
        ? { id: s.tenantDomainId }
        : (userDomain ?? { name: 'Default' });
    scope = { project: { name: s.tenant, domain } };
  }
  const body = {
    auth: {
      identity: { methods: ['password'], password: { user: { name: s.username, password: s.password, ...(userDomain ? { domain: userDomain } : {}) } } },
      ...(scope ? { scope } : {}),
    },
  };
  const res = await send(agents, {
    method: 'POST',
    url: under(s.authURL, 'auth/tokens'),
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'User-Agent': userAgent },
    body: Buffer.from(JSON.stringify(body)),
  });
  if (res.statusCode! < 200 || res.statusCode! > 299) return refused(s, res);
  const token = res.headers['x-subject-token'];
  const answer = (await json(res, s)).token ?? {};
  if (typeof token !== 'string' || !token) return fail(`authurl ${s.authURL} answered without an X-Subject-Token header`);
  const kind = s.endpointType ?? 'public';
  let storageURL: unknown;
  search: for (const service of Array.isArray(answer.catalog) ? answer.catalog : []) {
    if (service?.type !== 'object-store') continue;
    for (const endpoint of Array.isArray(service.endpoints) ? service.endpoints : []) {
      if (endpoint?.interface !== kind) continue;
      if (s.region !== undefined && endpoint.region !== s.region && endpoint.region_id !== s.region) continue;
      storageURL = endpoint.url;
      break search;
    }
  }
  if (typeof storageURL !== 'string' || !storageURL) return noEndpoint(s);
  return { token, storageURL, tenantId: answer.project?.id, expiresAt: expiry(answer.expires_at) };
}

/** A new session (token and storage URL) for these settings. */
export function authenticate(s: SwiftSettings, agents: Agents, userAgent: string): Promise<SwiftSession> {
  switch (s.authVersion) {
    case 1:
      return v1(s, agents, userAgent);
    case 2:
      return v2(s, agents, userAgent);
    case 3:
      return v3(s, agents, userAgent);
  }
}
