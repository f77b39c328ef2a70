/**
 * Access control, as Distribution's `auth.AccessController`: given a request and the accesses its route
 * needs, an access controller returns the authenticated user or throws an `AuthChallenge` (401
 * UNAUTHORIZED with a `WWW-Authenticate` header) that the error writer sends.
 */
import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../../registry/errors.js';

export type Action = 'pull' | 'push' | 'delete' | '*';

/** One resource and the actions a request needs on it. */
export type Access =
  | { type: 'repository'; name: string; actions: Action[] }
  | { type: 'registry'; name: 'catalog'; actions: ['*'] };

export interface Grant {
  /** The authenticated user (the token's `sub`, the htpasswd user, "silly"). */
  user: string;
}

export interface AccessController {
  /** Resolves to the grant, or rejects with an AuthChallenge (or another error: a server fault). */
  authorized(req: IncomingMessage, accesses: readonly Access[]): Promise<Grant>;
  /** Stop timers and watchers. */
  close?(): void;
}

/**
 * A refused request: 401 UNAUTHORIZED with the challenge header. `reason` is for the log only and never
 * holds a secret (no password, no token). The error body's detail lists the accesses asked for, one per
 * action, as Distribution does (`[{"Type":"repository","Class":"","Name":"a/b","Action":"pull"}, …]`).
 */
export class AuthChallenge extends RegistryError {
  constructor(
    readonly challenge: string,
    readonly reason: string,
    accesses: readonly Access[],
    /** When the request carried credentials (a failed login, a bad token): logged at info, not debug. */
    readonly hadCredentials: boolean,
  ) {
    super('UNAUTHORIZED', undefined, accessDetail(accesses));
  }

  get headers(): Record<string, string> {
    return { 'WWW-Authenticate': this.challenge };
  }
}

function accessDetail(accesses: readonly Access[]): unknown {
  if (accesses.length === 0) return null; // Distribution answers "detail":null on the base route
  return accesses.flatMap((a) => a.actions.map((action) => ({ Type: a.type, Class: '', Name: a.name, Action: action })));
}

/** A quoted-string for a challenge parameter, as Go's %q for the characters that can occur here. */
export function quote(value: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f]/g, '')}"`;
}

/** `repository:a/b:pull,push repository:c:pull` — resources in order, actions joined by commas. */
export function scopeParam(accesses: readonly Access[]): string {
  const merged = new Map<string, Set<string>>();
  for (const a of accesses) {
    const key = `${a.type}:${a.name}`;
    const set = merged.get(key) ?? new Set<string>();
    for (const action of a.actions) set.add(action);
    merged.set(key, set);
  }
  return [...merged].map(([resource, actions]) => `${resource}:${[...actions].join(',')}`).join(' ');
}

/** The credentials of `Authorization: Basic …`, or undefined when absent or malformed (as Go's BasicAuth). */
export function basicCredentials(req: IncomingMessage): { user: string; password: string } | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'basic') return undefined;
  const encoded = header.slice(space + 1);
  // Strict standard base64 (with padding), as Go's base64.StdEncoding.
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(encoded)) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
