/** The configured `auth` section → one access controller (or none: every request passes). */
import type { Logger } from 'pino';
import type { AccessController } from './access.js';
import { HtpasswdAccessController, type HtpasswdOptions } from './htpasswd.js';
import { SillyAccessController, type SillyOptions } from './silly.js';
import { TokenAccessController, type TokenOptions } from './token.js';

export { AuthChallenge, type Access, type AccessController, type Action, type Grant } from './access.js';

/** Distribution's `auth` section: at most one of these. */
export interface AuthSettings {
  htpasswd?: HtpasswdOptions;
  silly?: SillyOptions;
  token?: TokenOptions;
}

export async function createAccessController(auth: AuthSettings | undefined, log: Logger): Promise<AccessController | undefined> {
  if (auth?.htpasswd) return HtpasswdAccessController.create(auth.htpasswd, log);
  if (auth?.silly) return new SillyAccessController(auth.silly);
  if (auth?.token) return TokenAccessController.create(auth.token);
  return undefined;
}
