/**
 * The one map of the storage layout. It is Distribution's, byte for byte, so a
 * directory or bucket written by registry:2 is served by Wharf and back:
 *
 *   /docker/registry/v2/
 *     blobs/<algorithm>/<first two hex>/<hex>/data
 *     repositories/<name>/
 *       _layers/<algorithm>/<hex>/link                       -> "<algorithm>:<hex>"
 *       _manifests/revisions/<algorithm>/<hex>/link          -> "<algorithm>:<hex>"
 *       _manifests/tags/<tag>/current/link                   -> digest the tag points at
 *       _manifests/tags/<tag>/index/<algorithm>/<hex>/link   -> every digest the tag has held
 *       _uploads/<id>/data                                   -> bytes received so far
 *       _uploads/<id>/startedat                              -> RFC 3339 start time
 *       _uploads/<id>/hashstates/<algorithm>/<offset>        -> saved hash state (Distribution's format; we only read its presence)
 *
 * Wharf's own state lives beside that tree, never in it, so `docker-registry` and its
 * garbage-collect never see it:
 *
 *   /wharf/notifications/<instance>/
 *     lease                                                -> the owning process's heartbeat (JSON)
 *     endpoints/<endpoint>/<batch>                         -> queued events, {"events":[…]}
 *     corrupt/<endpoint>/<batch>                           -> batches that could not be parsed, kept for inspection
 *
 * Distribution's pull-through cache keeps when its cached content expires at the root, and so does Wharf:
 *
 *   /scheduler-state.json                                  -> {"<name>@<digest>": {"Key", "ExpiryData", "EntryType"}}
 *
 * No other module joins storage paths.
 */

export const ROOT = '/docker/registry/v2';
export const NOTIFICATIONS_ROOT = '/wharf/notifications';
export const PROXY_SCHEDULER_STATE = '/scheduler-state.json';

export type PathSpec =
  | { kind: 'blobsRoot' }
  | { kind: 'blobData'; digest: string }
  | { kind: 'blobDir'; digest: string }
  | { kind: 'repositoriesRoot' }
  | { kind: 'repository'; name: string }
  | { kind: 'layerLink'; name: string; digest: string }
  | { kind: 'layersDir'; name: string }
  | { kind: 'manifestRevisionsDir'; name: string }
  | { kind: 'manifestRevisionLink'; name: string; digest: string }
  | { kind: 'manifestRevisionDir'; name: string; digest: string }
  | { kind: 'tagsDir'; name: string }
  | { kind: 'tagDir'; name: string; tag: string }
  | { kind: 'tagCurrentLink'; name: string; tag: string }
  | { kind: 'tagIndexEntryLink'; name: string; tag: string; digest: string }
  | { kind: 'uploadsDir'; name: string }
  | { kind: 'uploadDir'; name: string; id: string }
  | { kind: 'uploadData'; name: string; id: string }
  | { kind: 'uploadStartedAt'; name: string; id: string }
  | { kind: 'uploadHashStates'; name: string; id: string }
  | { kind: 'proxySchedulerState' }
  | { kind: 'notificationsRoot' }
  | { kind: 'notificationQueue'; instance: string }
  | { kind: 'notificationLease'; instance: string }
  | { kind: 'notificationEndpoints'; instance: string }
  | { kind: 'notificationEndpointQueue'; instance: string; endpoint: string }
  | { kind: 'notificationBatch'; instance: string; endpoint: string; batch: string }
  | { kind: 'notificationCorruptBatch'; instance: string; endpoint: string; batch: string };

/** "sha256:abc…" → ["sha256", "abc…"]; callers pass validated digests only. */
function split(digest: string): [string, string] {
  const i = digest.indexOf(':');
  return [digest.slice(0, i), digest.slice(i + 1)];
}

export function pathFor(spec: PathSpec): string {
  switch (spec.kind) {
    case 'blobsRoot':
      return `${ROOT}/blobs`;
    case 'blobDir': {
      const [alg, hex] = split(spec.digest);
      return `${ROOT}/blobs/${alg}/${hex.slice(0, 2)}/${hex}`;
    }
    case 'blobData':
      return `${pathFor({ kind: 'blobDir', digest: spec.digest })}/data`;
    case 'repositoriesRoot':
      return `${ROOT}/repositories`;
    case 'repository':
      return `${ROOT}/repositories/${spec.name}`;
    case 'layersDir':
      return `${ROOT}/repositories/${spec.name}/_layers`;
    case 'layerLink': {
      const [alg, hex] = split(spec.digest);
      return `${ROOT}/repositories/${spec.name}/_layers/${alg}/${hex}/link`;
    }
    case 'manifestRevisionsDir':
      return `${ROOT}/repositories/${spec.name}/_manifests/revisions`;
    case 'manifestRevisionDir': {
      const [alg, hex] = split(spec.digest);
      return `${ROOT}/repositories/${spec.name}/_manifests/revisions/${alg}/${hex}`;
    }
    case 'manifestRevisionLink':
      return `${pathFor({ kind: 'manifestRevisionDir', name: spec.name, digest: spec.digest })}/link`;
    case 'tagsDir':
      return `${ROOT}/repositories/${spec.name}/_manifests/tags`;
    case 'tagDir':
      return `${ROOT}/repositories/${spec.name}/_manifests/tags/${spec.tag}`;
    case 'tagCurrentLink':
      return `${ROOT}/repositories/${spec.name}/_manifests/tags/${spec.tag}/current/link`;
    case 'tagIndexEntryLink': {
      const [alg, hex] = split(spec.digest);
      return `${ROOT}/repositories/${spec.name}/_manifests/tags/${spec.tag}/index/${alg}/${hex}/link`;
    }
    case 'uploadsDir':
      return `${ROOT}/repositories/${spec.name}/_uploads`;
    case 'uploadDir':
      return `${ROOT}/repositories/${spec.name}/_uploads/${spec.id}`;
    case 'uploadData':
      return `${ROOT}/repositories/${spec.name}/_uploads/${spec.id}/data`;
    case 'uploadStartedAt':
      return `${ROOT}/repositories/${spec.name}/_uploads/${spec.id}/startedat`;
    case 'uploadHashStates':
      return `${ROOT}/repositories/${spec.name}/_uploads/${spec.id}/hashstates`;
    case 'proxySchedulerState':
      return PROXY_SCHEDULER_STATE;
    case 'notificationsRoot':
      return NOTIFICATIONS_ROOT;
    case 'notificationQueue':
      return `${NOTIFICATIONS_ROOT}/${spec.instance}`;
    case 'notificationLease':
      return `${NOTIFICATIONS_ROOT}/${spec.instance}/lease`;
    case 'notificationEndpoints':
      return `${NOTIFICATIONS_ROOT}/${spec.instance}/endpoints`;
    case 'notificationEndpointQueue':
      return `${NOTIFICATIONS_ROOT}/${spec.instance}/endpoints/${spec.endpoint}`;
    case 'notificationBatch':
      return `${NOTIFICATIONS_ROOT}/${spec.instance}/endpoints/${spec.endpoint}/${spec.batch}`;
    case 'notificationCorruptBatch':
      return `${NOTIFICATIONS_ROOT}/${spec.instance}/corrupt/${spec.endpoint}/${spec.batch}`;
  }
}
