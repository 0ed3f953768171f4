/**
 * The spec's workflow types and the default steps each gets when created without steps.
 * Step numbers are 1-based; `dependencies` name earlier step numbers; durations are minutes.
 * Steps that do not depend on each other run in parallel (e.g. DATA_SYNC's two connections).
 */

export const WORKFLOW_TYPES = ['INTEGRATION_SETUP', 'API_ACCESS_GRANT', 'RESOURCE_SHARING', 'DATA_SYNC', 'TESTING_VALIDATION', 'PRODUCTION_DEPLOYMENT'] as const;
export type WorkflowType = (typeof WORKFLOW_TYPES)[number];

export interface TemplateStep {
  stepNumber: number;
  name: string;
  description: string;
  estimatedDuration: number;
  dependencies: number[];
}

const step = (stepNumber: number, name: string, description: string, estimatedDuration: number, dependencies: number[] = []): TemplateStep => ({
  stepNumber,
  name,
  description,
  estimatedDuration,
  dependencies,
});

export const WORKFLOW_TEMPLATES: Record<WorkflowType, TemplateStep[]> = {
  INTEGRATION_SETUP: [
    step(1, 'Validate Relationship', 'Check that the vendor-partner relationship exists and is active', 5),
    step(2, 'Configure API Access', 'Issue API credentials and scopes for the partner', 10, [1]),
    step(3, 'Setup Webhooks', 'Register the webhook endpoints both sides need', 10, [2]),
    step(4, 'Test Integration', 'Run the integration test suite against the sandbox', 30, [3]),
    step(5, 'Activate Integration', 'Switch the integration on for production traffic', 5, [4]),
  ],
  API_ACCESS_GRANT: [
    step(1, 'Verify Relationship', 'Confirm the partner is entitled to the API', 5),
    step(2, 'Review Access Request', 'Review the requested scopes against the agreement', 30, [1]),
    step(3, 'Issue Credentials', 'Create API keys or OAuth client credentials', 5, [2]),
    step(4, 'Configure Rate Limits', 'Apply the rate limits and quotas of the agreement', 10, [2]),
    step(5, 'Notify Partner', 'Send the credentials and documentation to the partner', 5, [3, 4]),
  ],
  RESOURCE_SHARING: [
    step(1, 'Validate Resource Ownership', 'Confirm the owner may share the resource', 5),
    step(2, 'Define Access Policy', 'Choose the access level, conditions and expiry', 15, [1]),
    step(3, 'Grant Access', 'Create the access grant', 5, [2]),
    step(4, 'Verify Access', 'Check the grantee can reach the resource with the granted level', 10, [3]),
  ],
  DATA_SYNC: [
    step(1, 'Define Data Mapping', 'Map source fields to target fields', 30),
    step(2, 'Configure Source Connection', 'Connect to the source system', 10, [1]),
    step(3, 'Configure Target Connection', 'Connect to the target system', 10, [1]),
    step(4, 'Initial Backfill', 'Copy existing records from source to target', 60, [2, 3]),
    step(5, 'Enable Incremental Sync', 'Start syncing changes continuously', 10, [4]),
  ],
  TESTING_VALIDATION: [
    step(1, 'Prepare Test Environment', 'Provision sandbox accounts and fixtures', 20),
    step(2, 'Run Contract Tests', 'Check the API contracts both ways', 15, [1]),
    step(3, 'Run End-to-End Tests', 'Exercise the main flows end to end', 45, [1]),
    step(4, 'Review Results', 'Review failures and sign off', 30, [2, 3]),
  ],
  PRODUCTION_DEPLOYMENT: [
    step(1, 'Pre-deployment Checks', 'Verify configuration, credentials and dependencies', 15),
    step(2, 'Deploy to Staging', 'Deploy the integration to staging', 15, [1]),
    step(3, 'Staging Verification', 'Smoke-test the staging deployment', 30, [2]),
    step(4, 'Deploy to Production', 'Roll the integration out to production', 15, [3]),
    step(5, 'Post-deployment Monitoring', 'Watch error rates and latency after the rollout', 60, [4]),
  ],
};
