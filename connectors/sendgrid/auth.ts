/** SendGrid authenticates with an API key as a bearer token (scope `mail.send` is enough). */
import type { CredentialsOf } from '../kit/contract.js';

export const authorization = (creds: CredentialsOf<'api_key'>): string => `Bearer ${creds.apiKey}`;
