// Throwaway PKI for the TLS tests, made with openssl: a server CA and a server certificate for
// 127.0.0.1 and localhost, a client CA with a client certificate, and a rogue CA with its own client.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from './process.js';

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCA: string;
  clientCert: string;
  clientKey: string;
  rogueCert: string;
  rogueKey: string;
}

async function makeCA(dir: string, name: string): Promise<void> {
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.crt`), '-subj', `/CN=Wharf test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

async function issue(dir: string, ca: string, name: string, keyArgs: string[], ext: string): Promise<void> {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const extFile = path.join(dir, `${name}.ext`);
  fs.writeFileSync(extFile, ext);
  await run('openssl', ['req', '-newkey', ...keyArgs, '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', path.join(dir, `${ca}.crt`), '-CAkey', path.join(dir, `${ca}.key`),
    '-CAcreateserial', '-days', '2', '-out', path.join(dir, `${name}.crt`), '-extfile', extFile]);
}

/** RSA server key (the cipher-suite tests name ECDHE_RSA suites), EC client keys. */
export async function makePki(dir: string): Promise<Pki> {
  await Promise.all([makeCA(dir, 'ca'), makeCA(dir, 'clientca'), makeCA(dir, 'rogueca')]);
  const ec = ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await Promise.all([
    issue(dir, 'ca', 'server', ['rsa:2048'], 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'),
    issue(dir, 'clientca', 'client', ec, 'extendedKeyUsage=clientAuth\n'),
    issue(dir, 'rogueca', 'rogue', ec, 'extendedKeyUsage=clientAuth\n'),
  ]);
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCA: p('clientca.crt'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    rogueCert: p('rogue.crt'),
    rogueKey: p('rogue.key'),
  };
}

/** A containers-style cert dir (`--cert-dir`): ca.crt, and client.cert/client.key when given. */
export function certDir(dir: string, ca: string, client?: { cert: string; key: string }): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(ca, path.join(dir, 'ca.crt'));
  if (client) {
    fs.copyFileSync(client.cert, path.join(dir, 'client.cert'));
    fs.copyFileSync(client.key, path.join(dir, 'client.key'));
  }
  return dir;
}
