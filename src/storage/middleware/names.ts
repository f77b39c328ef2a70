/**
 * The middleware names Wharf knows, and the message for the others (shared by the configuration
 * check at start-up, src/config/unsupported.ts, and the storage middleware chain).
 */
export const STORAGE_MIDDLEWARE: readonly string[] = ['redirect', 'cloudfront'];

/** Why middleware names are refused (Distribution 2.8 registers no registry or repository middleware). */
export function unknownMiddlewareMessage(kind: 'registry' | 'repository' | 'storage', names: readonly string[]): string {
  const known = kind === 'storage' ? `; the storage middleware are ${STORAGE_MIDDLEWARE.join(' and ')}` : `; Distribution 2.8 has no built-in ${kind} middleware`;
  const later = kind === 'storage' && names.includes('rewrite') ? " (Distribution 3's rewrite is not supported yet by this version of Wharf)" : '';
  return `unknown middleware ${names.map((n) => JSON.stringify(n)).join(', ')}${later}${known}`;
}
