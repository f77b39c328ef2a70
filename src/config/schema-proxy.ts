// The `proxy` section: Distribution's pull-through cache (`remoteurl`, `username`, `password`,
// `ttl`, `cachewritetimeout`, `exec`) plus Wharf's `upstreams`, a list of caches each serving the
// repositories under one name prefix, so that local repositories that accept pushes sit beside them.
import { z } from 'zod';
import { duration, list, section, str } from './primitives.js';

const DEFAULT_TTL = 168 * 3_600_000;
const PREFIX_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const PREFIX_PATTERN = new RegExp(`^${PREFIX_COMPONENT}(?:/${PREFIX_COMPONENT})*$`);

const upstreamURL = () =>
  str().refine((u) => u === '' || (URL.canParse(u) && /^https?:$/.test(new URL(u).protocol) && new URL(u).host !== ''), {
    error: 'expected an absolute http:// or https:// URL such as "https://registry-1.docker.io"',
  });

/** The keys one upstream has, in Distribution's `proxy` section and in each `proxy.upstreams` entry. */
const upstreamFields = {
  remoteurl: upstreamURL().default(''),
  username: str().default(''),
  password: str().default(''),
  ttl: duration().default(DEFAULT_TTL), // 0 (or negative): cached content never expires, as Distribution 3
  cachewritetimeout: duration().optional(),
  exec: section({ command: str().default(''), lifetime: duration().optional() }).optional(),
};

const upstreamSchema = section({
  prefix: str().refine((p) => PREFIX_PATTERN.test(p), {
    error: 'expected a repository name prefix such as "dockerhub" or "mirrors/ghcr" (lowercase name components separated by "/")',
  }),
  ...upstreamFields,
}).superRefine((u, ctx) => {
  if (u.remoteurl === '') ctx.addIssue({ code: 'custom', path: ['remoteurl'], input: undefined, message: 'missing; every upstream needs the URL of the registry it caches' });
});

export const proxySchema = section({
  ...upstreamFields,
  upstreams: list(upstreamSchema),
}).superRefine((p, ctx) => {
  const seen = new Map<string, number>();
  p.upstreams.forEach((u, i) => {
    const earlier = seen.get(u.prefix);
    if (earlier !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['upstreams', i, 'prefix'], input: u.prefix, message: `the same prefix as proxy.upstreams[${earlier}].prefix` });
    }
    seen.set(u.prefix, i);
  });
});
