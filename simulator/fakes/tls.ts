/**
 * A throwaway PKI for mutual-TLS tests and the demo: a CA, a server certificate for
 * 127.0.0.1/localhost, a client certificate signed by the CA, and a "rogue" client certificate
 * from another CA. node:crypto cannot sign X.509 certificates, so this shells out to `openssl`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface KeyPair {
  key: string;
  cert: string;
}

export interface TestPki {
  dir: string;
  ca: KeyPair;
  server: KeyPair;
  client: KeyPair;
  /** A client certificate from a CA the server does not trust. */
  rogue: KeyPair;
}

/** Whether the `openssl` command is on this machine. */
export function hasOpenssl(): boolean {
  return spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
}

/** Generates the PKI into `dir` (default: a new temporary directory); EC P-256 keys, valid 2 days. */
export function generateTestPki(dir = mkdtempSync(path.join(tmpdir(), 'concord-pki-'))): TestPki {
  const p = (f: string) => path.join(dir, f);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  const makeCa = (name: string, cn: string) => {
    ssl('req', '-x509', ...newKey, '-keyout', p(`${name}.key`), '-out', p(`${name}.crt`), '-subj', `/CN=${cn}`, '-days', '2',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  };
  const makeLeaf = (name: string, ca: string, cn: string, ext: string) => {
    writeFileSync(p(`${name}.ext`), ext);
    ssl('req', '-new', ...newKey, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${ca}.crt`), '-CAkey', p(`${ca}.key`), '-CAcreateserial', '-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`));
  };

  makeCa('ca', 'Concord Test CA');
  makeCa('rogue-ca', 'Rogue Test CA');
  makeLeaf('server', 'ca', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  makeLeaf('client', 'ca', 'concord-client', 'extendedKeyUsage=clientAuth\n');
  makeLeaf('rogue', 'rogue-ca', 'concord-client', 'extendedKeyUsage=clientAuth\n');
  const pair = (name: string): KeyPair => ({ key: readFileSync(p(`${name}.key`), 'utf8'), cert: readFileSync(p(`${name}.crt`), 'utf8') });
  return { dir, ca: pair('ca'), server: pair('server'), client: pair('client'), rogue: pair('rogue') };
}
