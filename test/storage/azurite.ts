/**
 * Azurite (Azure Storage's emulator, the npm devDependency `azurite`) for the azure tests:
 * started by scripts/services/azurite-start.sh on first use (a fixed state dir under /tmp, so one
 * Azurite serves every test file and later runs; the script takes a lock, so test files starting
 * it at once are safe). Each caller gets its own container and removes it when done.
 */
import { randomBytes } from 'node:crypto';
import { startService } from './service-script.js';
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';


export interface Azurite {
  /** The blob service URL, account in the path: http://127.0.0.1:10000/devstoreaccount1. */
  endpoint: string;
  accountName: string;
  accountKey: string;
  /** Milliseconds the start script took (a few ms when Azurite was already up). */
  startMs: number;
  service: BlobServiceClient;
  /** `storage.azure` parameters for `container`, Distribution's names. */
  options(container: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** A new container named after `label`. */
  createContainer(label: string): Promise<ContainerClient>;
}

let started: Promise<Azurite> | null = null;

export function startAzurite(): Promise<Azurite> {
  started ??= start();
  return started;
}

async function start(): Promise<Azurite> {
  const { vars, startMs } = await startService('azurite-start.sh', { timeoutMs: 90_000 });
  const endpoint = vars.AZURE_BLOB_ENDPOINT;
  const accountName = vars.AZURE_STORAGE_ACCOUNT;
  const accountKey = vars.AZURE_STORAGE_KEY;
  const service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(accountName, accountKey));
  return {
    endpoint,
    accountName,
    accountKey,
    startMs,
    service,
    options: (container, extra = {}) => ({ accountname: accountName, accountkey: accountKey, container, serviceurl: endpoint, ...extra }),
    createContainer: async (label) => {
      const container = service.getContainerClient(`wharf-${label}-${randomBytes(4).toString('hex')}`.toLowerCase());
      await container.create();
      return container;
    },
  };
}

/** Every blob name in the container, sorted (what a driver left behind). */
export async function blobNames(container: ContainerClient, prefix?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of container.listBlobsFlat({ prefix })) out.push(b.name);
  return out.sort();
}
