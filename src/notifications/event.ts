/**
 * Distribution's notification events: the JSON an endpoint receives, field for field. Empty
 * fields are left out as Go's `omitempty` leaves them out (a delete's target is only
 * `digest`/`tag` and `repository`), except `request.method` and `request.useragent`, which
 * Distribution always writes. Nothing here knows about routes: the server layer passes the
 * facts (repository, digest, URL, user) in.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** The envelope's Content-Type (Distribution 3; 2.8 sent `…events.v1+json` for the same JSON). */
export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v2+json';
/** Distribution describes every blob (layer, config) as octet-stream in events. */
export const BLOB_MEDIA_TYPE = 'application/octet-stream';

export const EVENT_ACTIONS = ['push', 'pull', 'mount', 'delete'] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

export interface EventDescriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: unknown;
  artifactType?: string;
}

export interface EventTarget {
  mediaType?: string;
  digest?: string;
  size?: number;
  /** The same as `size`, kept by Distribution for old consumers. */
  length?: number;
  repository?: string;
  /** The repository a mounted blob came from. */
  fromRepository?: string;
  url?: string;
  tag?: string;
  /** A manifest's config and layers, or an index's manifests (`notifications.events.includereferences`). */
  references?: EventDescriptor[];
}

export interface RequestRecord {
  id: string;
  addr?: string;
  host?: string;
  method: string;
  useragent: string;
}

export interface ActorRecord {
  name?: string;
}

export interface SourceRecord {
  /** hostname:port of the registry node. */
  addr?: string;
  /** Changes at every start. */
  instanceID?: string;
}

export interface Event {
  id: string;
  timestamp: string;
  action: EventAction;
  target: EventTarget;
  request: RequestRecord;
  actor: ActorRecord;
  source: SourceRecord;
}

/** What every event of one request shares. */
export interface EventOrigin {
  request: RequestRecord;
  actor: ActorRecord;
  source: SourceRecord;
}

/** A new event with a fresh id and the current time; empty target fields are dropped. */
export function newEvent(action: EventAction, origin: EventOrigin, target: EventTarget): Event {
  return {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    action,
    target: compact(target),
    request: origin.request,
    actor: origin.actor,
    source: origin.source,
  };
}

/** The request that caused the events, as Distribution's NewRequestRecord describes it. */
export function requestRecord(req: IncomingMessage, id: string = randomUUID()): RequestRecord {
  const host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
  const addr = remoteAddr(req);
  return {
    id,
    ...(addr && { addr }),
    ...(host && { host }),
    method: req.method ?? '',
    useragent: req.headers['user-agent'] ?? '',
  };
}

/**
 * Who asked: the authenticated user, else (as Distribution does, even without `auth`) the user
 * name of a Basic Authorization header, unverified.
 */
export function actorRecord(req: IncomingMessage, user?: string): ActorRecord {
  const name = user || basicUser(req.headers.authorization);
  return name ? { name } : {};
}

/** `hostname:port` from `http.addr`, as Distribution's source record (the address itself when it has no port). */
export function sourceAddress(hostname: string, addr: string): string {
  const i = addr.lastIndexOf(':');
  if (i < 0 || !/^\d+$/.test(addr.slice(i + 1))) return addr;
  const port = addr.slice(i + 1);
  return hostname.includes(':') ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** The descriptors a manifest refers to: config then layers, or an index's manifests. */
export function manifestReferences(doc: Record<string, unknown>): EventDescriptor[] {
  const list = Array.isArray(doc.manifests) ? doc.manifests : [doc.config, ...(Array.isArray(doc.layers) ? doc.layers : [])];
  return list.filter((d): d is Record<string, unknown> => typeof d === 'object' && d !== null).map(descriptorOf);
}

function descriptorOf(d: Record<string, unknown>): EventDescriptor {
  const out: EventDescriptor = {};
  if (typeof d.mediaType === 'string' && d.mediaType) out.mediaType = d.mediaType;
  if (typeof d.digest === 'string' && d.digest) out.digest = d.digest;
  if (typeof d.size === 'number' && d.size) out.size = d.size;
  if (Array.isArray(d.urls) && d.urls.length > 0) out.urls = d.urls as string[];
  if (d.annotations && typeof d.annotations === 'object' && Object.keys(d.annotations).length > 0) {
    out.annotations = d.annotations as Record<string, string>;
  }
  if (d.platform && typeof d.platform === 'object') out.platform = d.platform;
  if (typeof d.artifactType === 'string' && d.artifactType) out.artifactType = d.artifactType;
  return out;
}

/** Go's omitempty: no undefined, '', 0 or empty list. */
function compact(target: EventTarget): EventTarget {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(target)) {
    if (v === undefined || v === '' || v === 0 || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return out as EventTarget;
}

/** Distribution's RemoteAddr: the first X-Forwarded-For entry, else X-Real-Ip (when they are IPs), else the peer's ip:port. */
function remoteAddr(req: IncomingMessage): string {
  const forwarded = first(req.headers['x-forwarded-for'])?.split(',')[0]?.trim();
  if (forwarded && isIP(forwarded)) return forwarded;
  const real = first(req.headers['x-real-ip'])?.trim();
  if (real && isIP(real)) return real;
  // Go prints an IPv4 peer of a dual-stack socket as IPv4.
  const ip = req.socket?.remoteAddress?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (!ip) return '';
  return ip.includes(':') ? `[${ip}]:${req.socket?.remotePort}` : `${ip}:${req.socket?.remotePort}`;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function basicUser(header: string | undefined): string | undefined {
  const m = /^Basic\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 ? decoded.slice(0, colon) : undefined;
}
