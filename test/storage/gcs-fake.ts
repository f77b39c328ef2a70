/**
 * The fake Cloud Storage server (test/storage/fake-gcs) with a service account for the gcs
 * tests: a fresh RSA key pair whose public half the fake knows, the service-account JSON key
 * naming the fake's token endpoint as `token_uri`, and `storage.gcs` parameters for a bucket.
 * The driver reaches the fake through STORAGE_EMULATOR_HOST (passed as `env`, not set globally).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeGcs, type FakeGcsOptions } from './fake-gcs/server.js';

export interface ServiceAccount {
  /** The JSON key file's fields. */
  key: Record<string, string>;
  email: string;
  publicKeyPem: string;
}

export interface GcsFixture {
  fake: FakeGcs;
  account: ServiceAccount;
  /** STORAGE_EMULATOR_HOST for the driver. */
  env: NodeJS.ProcessEnv;
  /** `storage.gcs` parameters with the key inline (`credentials`). */
  options(bucket: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** A new bucket named after `label`. */
  createBucket(label: string): string;
  /** Write the key to a file (for `keyfile`). */
  writeKeyFile(): string;
  stop(): Promise<void>;
}

/** A service account with a new RSA key, as Google issues them (PKCS#8 PEM, 2048 bits). */
export function makeServiceAccount(tokenURI: string, name = 'wharf-test'): ServiceAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = `${name}@wharf-tests.iam.gserviceaccount.com`;
  return {
    email,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    key: {
      type: 'service_account',
      project_id: 'wharf-tests',
      private_key_id: randomBytes(20).toString('hex'),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: '104235670000000000001',
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: tokenURI,
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
      client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
    },
  };
}

export async function startFakeGcs(opts: Partial<FakeGcsOptions> = {}): Promise<GcsFixture> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-fake-gcs-'));
  const fake = await FakeGcs.start({ ...opts, dir });
  const account = makeServiceAccount(fake.tokenURL);
  fake.auth.addAccount(account.email, account.publicKeyPem);
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-gcs-key-'));
  return {
    fake,
    account,
    env: { STORAGE_EMULATOR_HOST: fake.url },
    options: (bucket, extra = {}) => ({ bucket, credentials: { ...account.key }, ...extra }),
    createBucket: (label) => {
      const name = `wharf-${label}-${randomBytes(4).toString('hex')}`.toLowerCase();
      fake.store.createBucket(name);
      return name;
    },
    writeKeyFile: () => {
      const file = path.join(keyDir, `key-${randomBytes(4).toString('hex')}.json`);
      fs.writeFileSync(file, JSON.stringify(account.key, null, 2), { mode: 0o600 });
      return file;
    },
    stop: async () => {
      await fake.close();
      fs.rmSync(keyDir, { recursive: true, force: true });
    },
  };
}
