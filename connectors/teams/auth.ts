/**
 * A Teams incoming webhook (classic connector or Workflows) is authenticated by its URL alone:
 * the URL carries its own key, so it is the credential (kept in the vault, handed over as the
 * `api_key` pattern's `apiKey`). Only HTTPS URLs on Microsoft's webhook hosts are called, so a
 * stored URL cannot point a playbook at an internal address.
 */
import type { CredentialsOf } from '../kit/contract.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';

/** Hosts Teams and Power Automate hand out webhook URLs on (suffix match). */
export const TEAMS_WEBHOOK_HOSTS = ['.webhook.office.com', '.logic.azure.com', '.api.powerplatform.com', '.environment.api.powerplatform.com'];

/** Refuses a URL that is not an HTTPS Teams webhook (tests pass their own check for the local fake). */
export function checkTeamsUrl(url: URL): void {
  const host = url.hostname.toLowerCase();
  if (url.protocol !== 'https:' || !TEAMS_WEBHOOK_HOSTS.some((h) => host.endsWith(h))) {
    throw new ConnectorError(ConnectorCode.Validation, `teams: ${url.protocol}//${host} is not a Teams incoming-webhook host`, { retryable: false });
  }
}

export function webhookUrl(creds: CredentialsOf<'api_key'>, check: (url: URL) => void): URL {
  let url: URL;
  try {
    url = new URL(creds.apiKey);
  } catch {
    throw new ConnectorError(ConnectorCode.ReauthorizationRequired, 'teams: the stored webhook URL is not a URL', { retryable: false });
  }
  check(url);
  return url;
}
