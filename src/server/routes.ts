/**
 * Every route of the OCI Distribution Spec v1.1 (end-1 … end-13) and the Docker Registry
 * HTTP API V2, in one table. Paths are matched on the raw URL: the repository name is never
 * percent-decoded, so `%2F`, `..` and NUL tricks fail the name grammar instead of moving paths.
 */
export type RouteName =
  | 'base' // end-1  GET /v2/
  | 'catalog' // GET /v2/_catalog
  | 'blob' // end-2  GET/HEAD/DELETE /v2/<name>/blobs/<digest>
  | 'uploadStart' // end-4a/4b/11  POST /v2/<name>/blobs/uploads/
  | 'upload' // end-5/6/13  PATCH/PUT/GET/DELETE /v2/<name>/blobs/uploads/<reference>
  | 'manifest' // end-3/7/9  GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>
  | 'tags' // end-8a/8b  GET /v2/<name>/tags/list
  | 'referrers' // end-12a/12b  GET /v2/<name>/referrers/<digest>
  | 'repository'; // Wharf: DELETE /v2/_wharf/repositories/<name> (a name component cannot start with "_")

export interface RouteMatch {
  route: RouteName;
  name?: string;
  reference?: string;
  allowed: readonly string[];
}

const ROUTES: { route: RouteName; pattern: RegExp; methods: readonly string[] }[] = [
  { route: 'base', pattern: /^\/v2\/?$/, methods: ['GET', 'HEAD'] },
  { route: 'catalog', pattern: /^\/v2\/_catalog\/?$/, methods: ['GET', 'HEAD'] },
  { route: 'repository', pattern: /^\/v2\/_wharf\/repositories\/(.+?)\/?$/, methods: ['DELETE'] },
  { route: 'tags', pattern: /^\/v2\/(.+)\/tags\/list\/?$/, methods: ['GET', 'HEAD'] },
  { route: 'uploadStart', pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, methods: ['POST'] },
  { route: 'upload', pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, methods: ['GET', 'HEAD', 'PATCH', 'PUT', 'DELETE'] },
  { route: 'blob', pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/, methods: ['GET', 'HEAD', 'DELETE'] },
  { route: 'manifest', pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/, methods: ['GET', 'HEAD', 'PUT', 'DELETE'] },
  { route: 'referrers', pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, methods: ['GET', 'HEAD'] },
];

function decodeReference(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // left as is: the tag/digest grammar rejects it
  }
}

/** Match a raw request path (no query string). */
export function matchRoute(path: string): RouteMatch | null {
  for (const { route, pattern, methods } of ROUTES) {
    const m = pattern.exec(path);
    if (!m) continue;
    return {
      route,
      name: m[1],
      reference: m[2] === undefined ? undefined : decodeReference(m[2]),
      allowed: methods,
    };
  }
  return null;
}
