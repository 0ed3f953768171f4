import type pg from 'pg';
import type { Clock } from '../../runtime/clock.js';
import { listAudit, reconcileActorAudit, type AuditEntry } from '../common/audit.js';

export interface AuditQuery {
  objectType?: string;
  objectId?: string;
  action?: string;
  limit: number;
  cursor?: string;
}

/** The audit trail as operators read it, completed from the actors' journals first. */
export class AuditTrail {
  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
  ) {}

  /** A page of the audit log, newest first. */
  async list(q: AuditQuery): Promise<{ data: AuditEntry[]; nextCursor: string | null }> {
    if (!q.objectType || q.objectType === 'relationship') await reconcileActorAudit(this.pool, 'relationship', this.clock.now(), q.objectId);
    return listAudit(this.pool, q);
  }
}
