import { createPrivateKey, X509Certificate } from 'node:crypto';
import { DomainCode, DomainError } from '../common/errors.js';
import type { CredentialSecret } from '../integrations/vault.js';
import type { RegistryAuthPattern } from './catalog.js';

/** Credentials as a registration sends them, per authentication pattern. */
export type CredentialsInput =
  | { apiKey: string; in: 'header' | 'query'; name: string }
  | { tokenUrl: string; clientId: string; clientSecret: string; scopes?: string[] }
  | { certPem: string; keyPem: string; caPem?: string };

/** A certificate's public description (kept in clear; its key never is). */
export interface CertificateInfo {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
}

/** Credentials split into what the vault keeps (secret) and what the registry row may show (auth). */
export interface SplitCredentials {
  secret: CredentialSecret;
  auth: Record<string, unknown>;
  scopes: string[];
  certificateExpiresAt: string | null;
  /** A URL the pattern will call besides the base URL (the token endpoint). */
  tokenUrl?: string;
}

const bad = (message: string, field = 'credentials') => new DomainError(DomainCode.ValidationFailed, message, { field });
const str = (v: unknown, field: string, max = 20_000): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw bad(`credentials.${field} must be a non-empty string`, `credentials.${field}`);
  return v;
};

/** Checks credentials against their pattern and splits them; a certificate is parsed (node:crypto) and must match its key. */
export function splitCredentials(pattern: RegistryAuthPattern, c: Record<string, unknown>): SplitCredentials {
  switch (pattern) {
    case 'api_key': {
      const where = c.in ?? 'header';
      if (where !== 'header' && where !== 'query') throw bad('credentials.in must be header or query', 'credentials.in');
      const name = str(c.name ?? (where === 'header' ? 'x-api-key' : 'api_key'), 'name', 100);
      return { secret: { apiKey: str(c.apiKey, 'apiKey', 4000) }, auth: { in: where, name }, scopes: [], certificateExpiresAt: null };
    }
    case 'oauth2':
    case 'service_account': {
      const scopes = c.scopes === undefined ? [] : c.scopes;
      if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string' || s.length === 0)) throw bad('credentials.scopes must be a list of strings', 'credentials.scopes');
      const tokenUrl = str(c.tokenUrl, 'tokenUrl', 2000);
      return {
        secret: { clientId: str(c.clientId, 'clientId', 500), clientSecret: str(c.clientSecret, 'clientSecret', 4000) },
        auth: { tokenUrl, scopes },
        scopes: scopes as string[],
        certificateExpiresAt: null,
        tokenUrl,
      };
    }
    case 'certificate': {
      const certPem = str(c.certPem, 'certPem');
      const keyPem = str(c.keyPem, 'keyPem');
      const caPem = c.caPem === undefined ? undefined : str(c.caPem, 'caPem');
      const info = describeCertificate(certPem);
      let matches: boolean;
      try {
        matches = new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
      } catch {
        throw bad('credentials.keyPem is not a readable private key (PEM)', 'credentials.keyPem');
      }
      if (!matches) throw bad('credentials.keyPem is not the key of credentials.certPem', 'credentials.keyPem');
      if (caPem) describeCertificate(caPem, 'caPem');
      return {
        secret: { certificatePem: certPem, privateKeyPem: keyPem, ...(caPem ? { caPem } : {}) },
        auth: { certificate: info },
        scopes: [],
        certificateExpiresAt: info.validTo,
      };
    }
  }
}

/** The public description of a PEM certificate (node:crypto X509Certificate); a bad one is a 400. */
export function describeCertificate(pem: string, field = 'certPem'): CertificateInfo {
  let x: X509Certificate;
  try {
    x = new X509Certificate(pem);
  } catch {
    throw bad(`credentials.${field} is not a readable X.509 certificate (PEM)`, `credentials.${field}`);
  }
  return {
    subject: x.subject.replace(/\n/g, ', '),
    issuer: x.issuer.replace(/\n/g, ', '),
    validFrom: new Date(x.validFrom).toISOString(),
    validTo: new Date(x.validTo).toISOString(),
    fingerprint256: x.fingerprint256,
  };
}
