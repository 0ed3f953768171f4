/** The connector kit: the contract every provider module follows, its one error type, the one classification and the one retry decision. */
export { classify, classifyResponse, parseRetryAfter, type ClassifyOptions, type HeadersLike, type HttpAnswer } from './classify.js';
export {
  defineConnector,
  invokerOf,
  type AuthPattern,
  type CallContext,
  type Connector,
  type ConnectorCall,
  type ConnectorInvoker,
  type ConnectorWebhooks,
  type CredentialsByPattern,
  type CredentialsOf,
  type InputOf,
  type OutputOf,
  type RecordMapping,
  type WebhookRequest,
  type WebhookVerification,
} from './contract.js';
export {
  ConnectorCode,
  ConnectorError,
  RETRYABLE_BY_DEFAULT,
  isConnectorError,
  isRateLimited,
  isRetryable,
  isStandardCode,
  isTerminal,
  isTimeout,
  needsReauthorization,
  type ConnectorErrorOptions,
  type ConnectorFailure,
} from './errors.js';
export { DEFAULT_RETRY_POLICY, backoffMs, decideRetry, type RetryDecision, type RetryPolicy, type RetrySignal } from './retry.js';
