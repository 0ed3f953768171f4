/** Mailgun authenticates with HTTP Basic: the user name `api` and the API key as the password. */
import type { CredentialsOf } from '../kit/contract.js';

export const authorization = (creds: CredentialsOf<'api_key'>): string => `Basic ${Buffer.from(`api:${creds.apiKey}`).toString('base64')}`;
