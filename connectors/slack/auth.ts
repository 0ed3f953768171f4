/**
 * Slack's Web API takes the bot token an app gets from OAuth (`xoxb-...`) as a bearer token; it
 * does not expire unless token rotation is on, so it is handed over as OAuth 2.0 credentials.
 */
import type { CredentialsOf } from '../kit/contract.js';

export const authorization = (creds: CredentialsOf<'oauth2'>): string => `Bearer ${creds.accessToken}`;
