// Features that a configuration can ask for but this version of Wharf does
// not implement yet. Start-up must stop on any of them rather than silently
// run without them. When a feature lands, delete its row.
import type { Config } from './schema.js';
import { STORAGE_MIDDLEWARE, unknownMiddlewareMessage } from '../storage/middleware/names.js';

const NOT_YET = 'not supported yet by this version of Wharf';
const REPLACED_BY_OTEL =
  'Wharf replaces Bugsnag and New Relic reporting with OpenTelemetry tracing: remove this key and set OTEL_EXPORTER_OTLP_ENDPOINT ' +
  '(an OTLP/HTTP collector, e.g. http://collector:4318) or OTEL_TRACES_EXPORTER=console; OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES ' +
  'and OTEL_TRACES_SAMPLER refine it (README: Tracing)';

interface Row {
  /** The configuration key the message names. */
  key: string;
  /** True (or a detail string) when the configuration uses the feature. */
  used: (c: Config) => boolean | string;
  message?: string | ((c: Config) => string);
}


export const UNSUPPORTED: readonly Row[] = [
  // storage
  // middleware: storage has redirect and cloudfront (src/storage/middleware); other names are unknown, as in Distribution 2.8
  ...(['registry', 'repository', 'storage'] as const).map((k) => {
    const unknown = (c: Config) => c.middleware[k].filter((m) => !m.disabled && !(k === 'storage' && STORAGE_MIDDLEWARE.includes(m.name))).map((m) => m.name);
    return { key: `middleware.${k}`, used: (c: Config) => unknown(c).join(', '), message: (c: Config) => unknownMiddlewareMessage(k, unknown(c)) };
  }),
  // reporting: replaced by OpenTelemetry tracing (src/tracing); on when Distribution would turn them on.
  { key: 'reporting.bugsnag', used: (c) => c.reporting.bugsnag.apikey !== '', message: REPLACED_BY_OTEL },
  { key: 'reporting.newrelic', used: (c) => c.reporting.newrelic.licensekey !== '', message: REPLACED_BY_OTEL },
  // http
  // log
  { key: 'log.reportcaller', used: (c) => c.log.reportcaller },
  // compatibility, validation, policy, tags
  { key: 'compatibility.schema1', used: (c) => c.compatibility.schema1.enabled },
  { key: 'policy.repository.classes', used: (c) => c.policy.repository.classes.length > 0 },
  { key: 'tags.maxtags', used: (c) => c.tags.maxtags !== undefined },
];

/**
 * One message per configured feature that Wharf does not implement yet, e.g.
 * `auth.htpasswd: not supported yet by this version of Wharf`. Empty when the
 * configuration can be served as written.
 */
export function unsupportedFeatures(config: Config): string[] {
  const out: string[] = [];
  for (const row of UNSUPPORTED) {
    const used = row.used(config);
    if (used === false || used === '') continue;
    const detail = typeof used === 'string' ? ` (${used})` : '';
    const message = typeof row.message === 'function' ? row.message(config) : row.message;
    out.push(`${row.key}${detail}: ${message ?? NOT_YET}`);
  }
  return out;
}
