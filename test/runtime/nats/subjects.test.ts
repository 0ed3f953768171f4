import { describe, expect, it } from 'vitest';
import { actorSubject } from '../../../runtime/effects.js';
import { natsNames, parsePartitionedSubject, parsePlainActorSubject, partitionedActorSubject } from '../../../runtime/nats/subjects.js';
import { partitionOf } from '../../../runtime/partition.js';

describe('NATS subjects', () => {
  it('partitions an actor by the runtime hash and parses it back, ids with dots included', () => {
    for (const id of ['a1', 'order.2024.7', 'x y/z', 'ü']) {
      const ref = { type: 'tally', id };
      const subject = partitionedActorSubject('concord', ref, 16);
      expect(subject.split('.')).toHaveLength(5);
      expect(subject.startsWith(`concord.actor.p${partitionOf(`tally/${id}`, 16)}.tally.`)).toBe(true);
      expect(parsePartitionedSubject(subject)).toEqual(ref);
      expect(parsePlainActorSubject(actorSubject('tally', id))).toEqual(ref);
    }
  });

  it('keeps the plain and the partitioned subjects in different token counts, so their streams never overlap', () => {
    const n = natsNames('acme');
    expect(n.ingressSubjects).toBe('acme.actor.*.*');
    expect(n.actorSubjects).toBe('acme.actor.*.*.*');
    expect(n.partitionFilter(3)).toBe('acme.actor.p3.*.*');
    expect(parsePartitionedSubject('acme.actor.tally.a1')).toBeNull();
    expect(parsePlainActorSubject('acme.actor.p3.tally.a1')).toBeNull();
    expect(n.actorStream).toBe('ACME_ACTORS');
  });
});
