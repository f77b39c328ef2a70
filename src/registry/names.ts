/** The OCI grammar for repository names, tags and digests, and the limits Distribution applies. */
import { fail } from './errors.js';

const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const NAME_PATTERN = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
export const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_PATTERN = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
export const MAX_NAME_LENGTH = 255;

/** Hex lengths of the algorithms Distribution accepts. */
const ALGORITHMS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_PATTERN.test(name);
}

export function checkName(name: string): void {
  if (name.length > MAX_NAME_LENGTH) {
    fail('NAME_INVALID', `repository name must not be more than ${MAX_NAME_LENGTH} characters`, { name: name.slice(0, 300) });
  }
  if (!NAME_PATTERN.test(name)) fail('NAME_INVALID', 'invalid repository name', { name });
}

export function isTag(reference: string): boolean {
  return TAG_PATTERN.test(reference);
}

/** Why a digest string is unusable, or null when it is a supported, well-formed digest. */
export function digestProblem(digest: string): string | null {
  if (!DIGEST_PATTERN.test(digest)) return 'invalid digest format';
  const [alg, hex] = digest.split(':') as [string, string];
  const length = ALGORITHMS[alg];
  if (length === undefined) return `unsupported digest algorithm ${alg}`;
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) return `invalid ${alg} digest: expected ${length} lowercase hex characters`;
  return null;
}

export function isDigest(reference: string): boolean {
  return reference.includes(':');
}

export function checkDigest(digest: string): string {
  const problem = digestProblem(digest);
  if (problem) fail('DIGEST_INVALID', problem, { digest });
  return digest;
}

export function algorithmOf(digest: string): string {
  return digest.slice(0, digest.indexOf(':'));
}
