import { describe, expect, it } from 'vitest';
import { loadConfig, subjectMatches } from '../../runtime/config.js';
import { isConcordError } from '../../runtime/errors.js';

function refusal(env: Record<string, string>): Error | null {
  try {
    loadConfig(env);
    return null;
  } catch (err) {
    return err as Error;
  }
}

describe('the service stream subjects and SAGA_SERVICE_PREFIX', () => {
  it('derives the service stream subjects from SAGA_SERVICE_PREFIX when they are not set', () => {
    expect(loadConfig({}).nats).toMatchObject({ serviceSubjects: 'svc.>', serviceEvents: 'svc.events.>', routerSkip: ['svc.events.OrderCreatedEvent'] });
    expect(loadConfig({ SAGA_SERVICE_PREFIX: 'acme.svc' }).nats).toMatchObject({
      serviceSubjects: 'acme.svc.>',
      serviceEvents: 'acme.svc.events.>',
      routerSkip: ['acme.svc.events.OrderCreatedEvent'],
    });
  });

  it('accepts explicit subjects that cover what the services consume', () => {
    expect(loadConfig({ SAGA_SERVICE_PREFIX: 'a.svc', NATS_SERVICE_SUBJECTS: 'a.>' }).nats.serviceSubjects).toBe('a.>');
    expect(loadConfig({ SAGA_SERVICE_PREFIX: 'a.svc', NATS_SERVICE_SUBJECTS: 'a.*.>' }).nats.serviceSubjects).toBe('a.*.>');
  });

  it('refuses at load, naming both variables, a stream that does not cover the inventory intake', () => {
    const err = refusal({ SAGA_SERVICE_PREFIX: 'acme', NATS_SERVICE_SUBJECTS: 'svc.>' });
    expect(isConcordError(err) && err.code).toBe('INVALID_CONFIG');
    expect(err!.message).toMatch(/NATS_SERVICE_SUBJECTS: 'svc\.>' does not cover 'acme\.inventory\.changed' and 'acme\.events\.OrderCreatedEvent'.*SAGA_SERVICE_PREFIX 'acme'/);
    // a stream of the events only: the inventory intake's subject is outside it
    expect(refusal({ NATS_SERVICE_SUBJECTS: 'svc.events.>' })!.message).toMatch(/does not cover 'svc\.inventory\.changed'/);
  });

  it('matches subjects as NATS does', () => {
    expect(subjectMatches('svc.>', 'svc.inventory.changed')).toBe(true);
    expect(subjectMatches('svc.>', 'svc')).toBe(false);
    expect(subjectMatches('svc.*', 'svc.inventory.changed')).toBe(false);
    expect(subjectMatches('svc.*.changed', 'svc.inventory.changed')).toBe(true);
    expect(subjectMatches('svc.inventory.changed', 'svc.inventory.changed')).toBe(true);
    expect(subjectMatches('svc.inventory', 'svc.inventory.changed')).toBe(false);
    expect(subjectMatches('>', 'a.b')).toBe(true);
  });
});
