/**
 * `auth.silly`, exactly as Distribution: any request with a non-empty Authorization header passes (user
 * "silly"); without one, 401 with `Bearer realm="…",service="…"` and, when the route needs accesses, a
 * `scope` listing each one as `type:name:action`, space separated. For tests and demos only.
 */
import type { IncomingMessage } from 'node:http';
import { AuthChallenge, quote, type Access, type AccessController, type Grant } from './access.js';

export interface SillyOptions {
  realm: string;
  service: string;
}

export class SillyAccessController implements AccessController {
  constructor(private readonly options: SillyOptions) {}

  async authorized(req: IncomingMessage, accesses: readonly Access[]): Promise<Grant> {
    const header = req.headers.authorization;
    if (typeof header === 'string' && header !== '') return { user: 'silly' };
    let challenge = `Bearer realm=${quote(this.options.realm)},service=${quote(this.options.service)}`;
    const scopes = accesses.flatMap((a) => a.actions.map((action) => `${a.type}:${a.name}:${action}`));
    if (scopes.length > 0) challenge += `,scope=${quote(scopes.join(' '))}`;
    throw new AuthChallenge(challenge, 'no Authorization header', accesses, false);
  }
}
