import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../../services/ecosystem/catalog.js';
import { isConcordError } from '../../../runtime/errors.js';

const dir = () => mkdtempSync(path.join(tmpdir(), 'concord-catalog-'));
const crm = { id: 'crm-platform', name: 'CRM platform', authPatterns: ['api_key', 'oauth2'], requiredConfig: ['baseUrl', 'region'], healthCheck: { path: '/ping', expectStatus: 204 }, defaultFeatures: ['contacts'] };

describe('the registry catalog: templates and tiers are data files', () => {
  it('has the seed four built in; a new template is a file in ECOSYSTEM_TEMPLATES_DIR', () => {
    expect(new Catalog().templates().map((t) => t.id)).toEqual(['cloud-provider', 'data-platform', 'mlops-platform', 'monitoring-platform']);
    const d = dir();
    writeFileSync(path.join(d, 'crm.json'), JSON.stringify(crm));
    const c = new Catalog({ templatesDir: d });
    expect(c.template('crm-platform')).toMatchObject({ ...crm, platforms: [], features: [], description: '' });
    expect(c.templates()).toHaveLength(5);
  });

  it('a bad template or tier file stops start-up naming the file and the field', () => {
    const d = dir();
    writeFileSync(path.join(d, 'bad.json'), JSON.stringify({ ...crm, authPatterns: ['telepathy'] }));
    let err: unknown;
    try {
      new Catalog({ templatesDir: d });
    } catch (e) {
      err = e;
    }
    expect(isConcordError(err) && err.code).toBe('INVALID_CONFIG');
    expect((err as Error).message).toMatch(/bad\.json.*authPatterns/);
    const t = path.join(dir(), 'tiers.json');
    writeFileSync(t, JSON.stringify({ tiers: { enterprise: {} } }));
    expect(() => new Catalog({ tiersFile: t })).toThrow(/tiers\.json is invalid/);
  });

  it('the tier table: enterprise has the SLA, the largest budget share and the shortest interval; community none and the smallest', () => {
    const { tiers } = new Catalog().tiers;
    expect(tiers.enterprise.slaTarget).toBe(99.9);
    expect(tiers.professional.slaTarget).toBeNull();
    expect(tiers.community.slaTarget).toBeNull();
    expect(tiers.enterprise.rateBudgetShare).toBeGreaterThan(tiers.professional.rateBudgetShare);
    expect(tiers.professional.rateBudgetShare).toBeGreaterThan(tiers.community.rateBudgetShare);
    expect(tiers.enterprise.healthCheckIntervalMs).toBeLessThan(tiers.professional.healthCheckIntervalMs);
    expect(tiers.professional.healthCheckIntervalMs).toBeLessThan(tiers.community.healthCheckIntervalMs);
  });

  it('production scopes: the words, suffixes and prefixes of the table', () => {
    const c = new Catalog();
    expect(c.productionScopes(['read', 'orders.write', 'repo:admin', 'admin:org', 'prod', 'reader', 'rewrite'])).toEqual(['orders.write', 'repo:admin', 'admin:org', 'prod']);
  });
});
