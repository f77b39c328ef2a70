/**
 * `http.tls.ciphersuites`: Distribution's cipher suite names (Go's crypto/tls constant names, which are
 * the IANA names) and the OpenSSL names Node.js understands. One table; every name Distribution 2.8
 * accepts is here, the TLS 1.3 suites included.
 */

interface Suite {
  /** OpenSSL's name for the suite (TLS 1.3 suites keep their IANA name in OpenSSL). */
  openssl: string;
  tls13?: true;
}

export const CIPHER_SUITES: Readonly<Record<string, Suite>> = {
  // TLS 1.0 – 1.2
  TLS_RSA_WITH_RC4_128_SHA: { openssl: 'RC4-SHA' },
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: { openssl: 'DES-CBC3-SHA' },
  TLS_RSA_WITH_AES_128_CBC_SHA: { openssl: 'AES128-SHA' },
  TLS_RSA_WITH_AES_256_CBC_SHA: { openssl: 'AES256-SHA' },
  TLS_RSA_WITH_AES_128_CBC_SHA256: { openssl: 'AES128-SHA256' },
  TLS_RSA_WITH_AES_128_GCM_SHA256: { openssl: 'AES128-GCM-SHA256' },
  TLS_RSA_WITH_AES_256_GCM_SHA384: { openssl: 'AES256-GCM-SHA384' },
  TLS_ECDHE_ECDSA_WITH_RC4_128_SHA: { openssl: 'ECDHE-ECDSA-RC4-SHA' },
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: { openssl: 'ECDHE-ECDSA-AES128-SHA' },
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: { openssl: 'ECDHE-ECDSA-AES256-SHA' },
  TLS_ECDHE_RSA_WITH_RC4_128_SHA: { openssl: 'ECDHE-RSA-RC4-SHA' },
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: { openssl: 'ECDHE-RSA-DES-CBC3-SHA' },
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: { openssl: 'ECDHE-RSA-AES128-SHA' },
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: { openssl: 'ECDHE-RSA-AES256-SHA' },
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: { openssl: 'ECDHE-ECDSA-AES128-SHA256' },
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: { openssl: 'ECDHE-RSA-AES128-SHA256' },
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: { openssl: 'ECDHE-RSA-AES128-GCM-SHA256' },
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: { openssl: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: { openssl: 'ECDHE-RSA-AES256-GCM-SHA384' },
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: { openssl: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: { openssl: 'ECDHE-RSA-CHACHA20-POLY1305' },
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: { openssl: 'ECDHE-ECDSA-CHACHA20-POLY1305' },
  // TLS 1.3
  TLS_AES_128_GCM_SHA256: { openssl: 'TLS_AES_128_GCM_SHA256', tls13: true },
  TLS_AES_256_GCM_SHA384: { openssl: 'TLS_AES_256_GCM_SHA384', tls13: true },
  TLS_CHACHA20_POLY1305_SHA256: { openssl: 'TLS_CHACHA20_POLY1305_SHA256', tls13: true },
};

/** Distribution's default list, used when `ciphersuites` is empty (forward secrecy and AEAD only). */
export const DEFAULT_CIPHER_SUITES: readonly string[] = [
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_256_GCM_SHA384',
];

const TLS13_ALL = Object.entries(CIPHER_SUITES).filter(([, s]) => s.tls13).map(([name]) => name);

/**
 * The OpenSSL cipher string (Node's `ciphers` option, which takes TLS 1.3 suites too) for a list of
 * Distribution names; throws naming `http.tls.ciphersuites` on an unknown name. As with Go, a list
 * without any TLS 1.3 suite leaves the TLS 1.3 suites enabled (Go never lets them be turned off);
 * a list that names TLS 1.3 suites restricts TLS 1.3 to those.
 */
export function opensslCiphers(names: readonly string[]): string {
  const list = names.length === 0 ? DEFAULT_CIPHER_SUITES : names;
  const unknown = list.filter((n) => !Object.hasOwn(CIPHER_SUITES, n));
  if (unknown.length > 0) {
    throw new Error(
      `http.tls.ciphersuites: unknown TLS cipher suite ${unknown.map((n) => `"${n}"`).join(', ')} ` +
        `(known: ${Object.keys(CIPHER_SUITES).join(', ')})`,
    );
  }
  const withTls13 = list.some((n) => CIPHER_SUITES[n]!.tls13) ? list : [...list, ...TLS13_ALL];
  return [...new Set(withTls13.map((n) => CIPHER_SUITES[n]!.openssl))].join(':');
}
