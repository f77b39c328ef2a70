/**
 * The `azure` driver's parameters, as Distribution's azure driver reads them (2.8's accountname,
 * accountkey, container, realm; 3.x's serviceurl, rootdirectory, credentials, skipverify,
 * max_retries, retry_delay), checked at start-up with the key's name, and the SDK clients and
 * SAS signer they describe. The SDK is loaded on first use (about 0.4 s of start-up for every
 * other driver otherwise), `@azure/identity` only when a token credential is used.
 */
import { Agent as HttpsAgent } from 'node:https';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { BlobServiceClient, StorageSharedKeyCredential, UserDelegationKey } from '@azure/storage-blob';
import { parseDuration } from '../config/duration.js';
import { boolParam, httpURL, isUnset, rootPrefix, stringParam } from './driver-options.js';

export type AzureCredentials =
  | { type: 'shared_key' }
  | { type: 'client_secret'; tenantId: string; clientId: string; secret: string }
  | { type: 'default_credentials' };

export interface AzureSettings {
  accountName: string;
  accountKey?: string;
  container: string;
  realm: string;
  /** The blob service endpoint: `serviceurl`, else https://<accountname>.blob.<realm>. */
  serviceURL: string;
  /**
   * The prefix of every blob name. Without `rootdirectory` it is '/', so a path is the blob name
   * as is, leading '/' included: Distribution 2.8's naming. With `rootdirectory` it is that
   * directory without leading '/' (and '' for '/'), as Distribution 3 names blobs.
   */
  prefix: string;
  credentials: AzureCredentials;
  skipVerify: boolean;
  /** Polls of a pending server-side copy before it is aborted (-1: do not wait at all). */
  maxRetries: number;
  /** The wait before the n-th poll is n times this. */
  retryDelayMs: number;
}

export const DEFAULT_REALM = 'core.windows.net';
const DEFAULT_MAX_RETRIES = 5;
const DEFAULT_RETRY_DELAY = '100ms';
const CREDENTIAL_TYPES = ['shared_key', 'client_secret', 'default_credentials'];
/** Azure's container naming rules (plus the special $root container). */
const CONTAINER_NAME = /^(?:\$root|(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*)$/;

function fail(message: string): never {
  throw new Error(`storage.azure: ${message}`);
}

function str(o: Record<string, unknown>, key: string, where = ''): string | undefined {
  return stringParam(o, key, () => fail(`${where}${key} must be a string`));
}

function bool(o: Record<string, unknown>, key: string): boolean {
  return boolParam(o, key, false, () => fail(`${key} must be a boolean`));
}

/** Read and check the `storage.azure` parameters, with Distribution's defaults. */
export function parseAzureOptions(o: Record<string, unknown>, warn: (message: string) => void = () => undefined): AzureSettings {
  const accountName = str(o, 'accountname') ?? fail('no accountname parameter provided');
  if (!/^[a-z0-9]{3,24}$/.test(accountName) && accountName !== 'devstoreaccount1') {
    fail(`accountname "${accountName}" is not a storage account name (3 to 24 lowercase letters and digits)`);
  }
  const container = str(o, 'container') ?? fail('no container parameter provided');
  if (!CONTAINER_NAME.test(container)) {
    fail(`container "${container}" is not a valid container name (3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit)`);
  }
  const realm = str(o, 'realm') ?? DEFAULT_REALM;
  const serviceURL = (str(o, 'serviceurl') ?? `https://${accountName}.blob.${realm}`).replace(/\/+$/, '');
  const parsed = httpURL(serviceURL, () => fail(`serviceurl must be an http or https URL, got ${serviceURL}`));
  if (parsed.search || parsed.hash) fail(`serviceurl must not have a query or fragment (${serviceURL})`);

  const accountKey = str(o, 'accountkey');
  const creds = o.credentials;
  if (creds !== undefined && creds !== null && (typeof creds !== 'object' || Array.isArray(creds))) fail('credentials must be a map');
  const c = (creds ?? {}) as Record<string, unknown>;
  // Distribution 2.8 has no credentials section: an account key is a shared key.
  const type = str(c, 'type', 'credentials.') ?? (accountKey !== undefined ? 'shared_key' : undefined);
  let credentials: AzureCredentials;
  if (type === undefined) {
    fail('no accountkey parameter provided (or set credentials.type to client_secret or default_credentials)');
  } else if (type === 'shared_key') {
    if (accountKey === undefined) fail('credentials.type shared_key needs the accountkey parameter');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(accountKey) || accountKey.length % 4 !== 0) fail('accountkey must be the base64 account key');
    credentials = { type };
  } else if (type === 'client_secret') {
    const missing = ['tenantid', 'clientid', 'secret'].filter((k) => str(c, k, 'credentials.') === undefined);
    if (missing.length > 0) fail(`credentials.type client_secret needs ${missing.map((k) => `credentials.${k}`).join(', ')}`);
    credentials = { type, tenantId: str(c, 'tenantid')!, clientId: str(c, 'clientid')!, secret: str(c, 'secret')! };
  } else if (type === 'default_credentials') {
    credentials = { type };
  } else {
    fail(`invalid credentials type "${type}" (expected one of ${CREDENTIAL_TYPES.join(', ')})`);
  }
  if (credentials.type !== 'shared_key' && accountKey !== undefined) warn(`storage.azure.accountkey is not used with credentials.type ${credentials.type}`);
  if (str(o, 'connectionstring') !== undefined) {
    warn('storage.azure.connectionstring is not used (Distribution ignores it too): set accountname, accountkey and serviceurl');
  }

  const rawRetries = o.max_retries;
  let maxRetries = DEFAULT_MAX_RETRIES;
  if (!isUnset(rawRetries)) {
    const n = typeof rawRetries === 'number' ? rawRetries : Number(String(rawRetries).trim());
    if (!Number.isSafeInteger(n) || n < -1) fail(`max_retries must be an integer ≥ -1, got ${String(rawRetries)}`);
    // Distribution: 0 means the default.
    if (n !== 0) maxRetries = n;
  }
  const rawDelay = str(o, 'retry_delay') ?? DEFAULT_RETRY_DELAY;
  let retryDelayMs: number;
  try {
    retryDelayMs = parseDuration(rawDelay);
  } catch {
    fail(`retry_delay must be a duration such as "100ms" or "1s", got ${rawDelay}`);
  }

  const root = str(o, 'rootdirectory');
  // Without rootdirectory the path is the blob name as it is: Distribution 2.8's naming.
  const prefix = rootPrefix(root, () => fail(`rootdirectory "${root}" must be '/'-separated names`)) ?? '/';
  return {
    accountName,
    accountKey: credentials.type === 'shared_key' ? accountKey : undefined,
    container,
    realm,
    serviceURL,
    prefix,
    credentials,
    skipVerify: bool(o, 'skipverify'),
    maxRetries,
    retryDelayMs,
  };
}

/**
 * A token credential that loads `@azure/identity` (and its MSAL dependencies) on first use, so
 * configurations with a shared key do not pay for it.
 */
class LazyTokenCredential implements TokenCredential {
  private inner: Promise<TokenCredential> | null = null;

  constructor(private readonly creds: Exclude<AzureCredentials, { type: 'shared_key' }>) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.inner ??= import('@azure/identity').then((identity) =>
      this.creds.type === 'client_secret'
        ? new identity.ClientSecretCredential(this.creds.tenantId, this.creds.clientId, this.creds.secret)
        : new identity.DefaultAzureCredential(),
    );
    return (await this.inner).getToken(scopes, options);
  }
}

/** A request policy that turns certificate checks off (`skipverify`): an agent of its own for HTTPS. */
function insecureAgentFactory() {
  const agent = new HttpsAgent({ keepAlive: true, rejectUnauthorized: false });
  return {
    create: (next: { sendRequest(r: { url: string; agent?: unknown }): Promise<unknown> }) => ({
      sendRequest: (request: { url: string; agent?: unknown }) => {
        if (request.url.startsWith('https:')) request.agent = agent;
        return next.sendRequest(request);
      },
    }),
  };
}

/** Signs read-only SAS URLs for blobs: with the account key, or with a cached user delegation key. */
export interface SasSigner {
  sign(containerName: string, blobName: string, expiresOn: Date): Promise<string>;
}

/** User delegation keys live 48 hours and are renewed 30 minutes before they expire, as Distribution does. */
const UDK_LIFETIME_MS = 48 * 3600_000;
const UDK_GRACE_MS = 30 * 60_000;

export async function makeAzureClients(s: AzureSettings): Promise<{ service: BlobServiceClient; signer: SasSigner }> {
  const { BlobSASPermissions, BlobServiceClient, generateBlobSASQueryParameters, newPipeline, SASProtocol, StorageSharedKeyCredential } = await import(
    '@azure/storage-blob'
  );
  const pipeline = (credential: StorageSharedKeyCredential | TokenCredential) => {
    const p = newPipeline(credential, {
      // Fail over in seconds rather than minutes when the store is down.
      retryOptions: { maxTries: 4, retryDelayInMs: 500, maxRetryDelayInMs: 8_000 },
      userAgentOptions: { userAgentPrefix: 'wharf' },
    });
    if (s.skipVerify) p.factories.push(insecureAgentFactory() as never);
    return p;
  };
  // SAS URLs are HTTPS-only unless the service itself is plain HTTP (an emulator).
  const protocol = s.serviceURL.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp;
  const values = (containerName: string, blobName: string, expiresOn: Date) => ({
    containerName,
    blobName,
    permissions: BlobSASPermissions.parse('r'),
    startsOn: new Date(Date.now() - 10_000),
    expiresOn,
    protocol,
  });
  if (s.credentials.type === 'shared_key') {
    const key = new StorageSharedKeyCredential(s.accountName, s.accountKey!);
    return {
      service: new BlobServiceClient(s.serviceURL, pipeline(key)),
      signer: { sign: async (c, b, e) => generateBlobSASQueryParameters(values(c, b, e), key).toString() },
    };
  }
  const service = new BlobServiceClient(s.serviceURL, pipeline(new LazyTokenCredential(s.credentials)));
  let udk: { key: UserDelegationKey; expires: number } | null = null;
  let pending: Promise<UserDelegationKey> | null = null;
  const delegationKey = async (): Promise<UserDelegationKey> => {
    if (udk && udk.expires - Date.now() > UDK_GRACE_MS) return udk.key;
    pending ??= (async () => {
      try {
        const start = new Date(Date.now() - 10_000);
        const expires = start.getTime() + UDK_LIFETIME_MS;
        const key = await service.getUserDelegationKey(start, new Date(expires));
        udk = { key, expires };
        return key;
      } finally {
        pending = null;
      }
    })();
    return pending;
  };
  return {
    service,
    signer: { sign: async (c, b, e) => generateBlobSASQueryParameters(values(c, b, e), await delegationKey(), s.accountName).toString() },
  };
}
