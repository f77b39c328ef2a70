/**
 * `http.tls` → Node TLS options, checked at start-up: every problem stops start-up with a message
 * naming the configuration key, as Distribution does (and a little stricter where Distribution would
 * silently serve cleartext, e.g. a key without a certificate).
 */
import { readFileSync } from 'node:fs';
import type { SecureVersion, TlsOptions } from 'node:tls';
import { opensslCiphers } from './ciphers.js';

/** `http.tls` as configured (Distribution's keys). */
export interface TlsSettings {
  certificate: string;
  key: string;
  clientcas: string[];
  /** Distribution 3's `clientauth`; only meaningful with `clientcas`. */
  clientauth?: 'request-client-cert' | 'require-any-client-cert' | 'verify-client-cert-if-given' | 'require-and-verify-client-cert';
  minimumtls?: 'tls1.0' | 'tls1.1' | 'tls1.2' | 'tls1.3';
  ciphersuites: string[];
  letsencrypt: { cachefile: string; email: string; hosts: string[]; directoryurl: string };
}

export interface LetsEncryptSettings {
  cachefile: string;
  email: string;
  hosts: string[];
  directoryurl: string;
}

export interface ResolvedTls {
  /** Options for `tls.createServer`/`http2.createSecureServer` (certificate absent with Let's Encrypt). */
  options: TlsOptions;
  minimumtls: string;
  /** Client certificates: 'off', or Distribution's clientauth mode. */
  clientAuth: 'off' | NonNullable<TlsSettings['clientauth']>;
  letsencrypt?: LetsEncryptSettings;
}

const VERSIONS: Record<string, SecureVersion> = { 'tls1.0': 'TLSv1', 'tls1.1': 'TLSv1.1', 'tls1.2': 'TLSv1.2', 'tls1.3': 'TLSv1.3' };

/** True when the configuration turns TLS on (as Distribution: a certificate or a Let's Encrypt cache file). */
export function tlsConfigured(t: TlsSettings): boolean {
  const le = t.letsencrypt;
  return t.certificate !== '' || t.key !== '' || le.cachefile !== '' || le.hosts.length > 0 || le.email !== '' || le.directoryurl !== '';
}

function readFile(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${key}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** undefined when TLS is off; throws (naming the key) on a configuration that cannot be served. */
export function resolveTls(t: TlsSettings): ResolvedTls | undefined {
  if (!tlsConfigured(t)) return undefined;
  const le = t.letsencrypt;
  const usesLE = le.cachefile !== '' || le.hosts.length > 0 || le.email !== '' || le.directoryurl !== '';
  if (usesLE && t.certificate !== '') {
    throw new Error('http.tls: cannot specify both certificate and Let\'s Encrypt (http.tls.letsencrypt)');
  }
  if (usesLE && le.cachefile === '') throw new Error('http.tls.letsencrypt.cachefile: required to use Let\'s Encrypt');
  if (usesLE && le.hosts.length === 0) {
    throw new Error('http.tls.letsencrypt.hosts: list the host names to obtain a certificate for');
  }
  if (!usesLE && t.certificate === '') throw new Error('http.tls.certificate: required with http.tls.key');
  if (!usesLE && t.key === '') throw new Error('http.tls.key: required with http.tls.certificate');

  const minimumtls = t.minimumtls ?? 'tls1.2';
  const minVersion = VERSIONS[minimumtls];
  if (!minVersion) throw new Error(`http.tls.minimumtls: unknown minimum TLS level "${minimumtls}"`);
  let ciphers = opensslCiphers(t.ciphersuites);
  // OpenSSL 3 refuses TLS 1.0/1.1 at its default security level; a configuration that asks for them gets them.
  if (minimumtls === 'tls1.0' || minimumtls === 'tls1.1') ciphers += ':@SECLEVEL=0';

  const options: TlsOptions = { minVersion, ciphers, honorCipherOrder: true };
  if (!usesLE) {
    options.cert = readFile('http.tls.certificate', t.certificate);
    options.key = readFile('http.tls.key', t.key);
  }
  let clientAuth: ResolvedTls['clientAuth'] = 'off';
  if (t.clientcas.length > 0) {
    options.ca = t.clientcas.map((path, i) => {
      const pem = readFile(`http.tls.clientcas[${i}]`, path);
      if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
        throw new Error(`http.tls.clientcas[${i}]: ${path} holds no PEM certificate`);
      }
      return pem;
    });
    clientAuth = t.clientauth ?? 'require-and-verify-client-cert';
    options.requestCert = true;
    // Only the strict mode can be enforced inside the handshake; the others are checked right after it.
    options.rejectUnauthorized = clientAuth === 'require-and-verify-client-cert';
  }
  return { options, minimumtls, clientAuth, letsencrypt: usesLE ? { ...le } : undefined };
}

/**
 * For the client-auth modes OpenSSL cannot enforce with Node's options: whether a connection that
 * completed its handshake may stay. (require-and-verify is enforced in the handshake itself.)
 */
export function clientAllowed(mode: ResolvedTls['clientAuth'], socket: { authorized: boolean; getPeerCertificate(): object | null }): boolean {
  if (mode === 'off' || mode === 'request-client-cert' || mode === 'require-and-verify-client-cert') return true;
  const cert = socket.getPeerCertificate();
  const given = cert !== null && Object.keys(cert).length > 0;
  if (mode === 'require-any-client-cert') return given;
  return !given || socket.authorized; // verify-client-cert-if-given
}
