/**
 * Twilio authenticates with HTTP Basic: the Account SID (or an API key SID) as the user name and
 * the Auth Token (or the API key's secret) as the password. The secret is the `api_key`
 * pattern's `apiKey`; the SIDs are not secret and travel with the call.
 */
import type { CredentialsOf } from '../kit/contract.js';

export const authorization = (username: string, creds: CredentialsOf<'api_key'>): string => `Basic ${Buffer.from(`${username}:${creds.apiKey}`).toString('base64')}`;
