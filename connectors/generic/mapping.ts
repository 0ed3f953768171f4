/** A generic API's record <-> ours: its id, its fields, and when it changed. */
import type { RecordMapping } from '../kit/contract.js';

export interface GenericRecord {
  externalId: string;
  fields: Record<string, unknown>;
  updatedAt: string | undefined;
}

export function toRecord(r: Record<string, unknown>, o: { idField?: string; updatedAtField?: string } = {}): GenericRecord {
  const { [o.idField ?? 'id']: id, [o.updatedAtField ?? 'updatedAt']: updatedAt, ...fields } = r;
  if (typeof id !== 'string' && typeof id !== 'number') throw new TypeError(`record without '${o.idField ?? 'id'}'`);
  return { externalId: String(id), fields, updatedAt: typeof updatedAt === 'string' ? updatedAt : undefined };
}

export function fromRecord(r: GenericRecord, o: { idField?: string } = {}): Record<string, unknown> {
  return { ...r.fields, [o.idField ?? 'id']: r.externalId };
}

export const recordMapping = { fromProvider: (r: Record<string, unknown>) => toRecord(r), toProvider: (r: GenericRecord) => fromRecord(r) } satisfies RecordMapping<Record<string, unknown>, GenericRecord>;
