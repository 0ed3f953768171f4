/**
 * What to do with one SKU when our stock and a channel's are compared: pure, so every strategy
 * is tested without I/O and a replay decides the same.
 *
 * "Changed" is measured against the last state both sides agreed on (the baseline a sync or an
 * applied webhook recorded). Only one side changed: it is copied to the other (when the
 * direction lets it). Both changed to different values: a conflict, settled by the connection's
 * strategy (the seed's four): `egdc_wins`, `marketplace_wins`, `most_recent` (by the change
 * times each side reports; a tie or a missing time keeps ours) or `manual` (left open for a
 * person; the SKU is not synced while it is).
 */

export const CONFLICT_STRATEGIES = ['egdc_wins', 'marketplace_wins', 'most_recent', 'manual'] as const;
export type ConflictStrategy = (typeof CONFLICT_STRATEGIES)[number];

export type SyncDirection = 'inbound' | 'outbound' | 'both';

export interface StockSide {
  stock: number;
  /** When this side last changed, as it reports it (ISO); null when unknown. */
  changedAt: string | null;
}

export interface Comparison {
  ours: StockSide;
  channel: StockSide;
  /** The stock both sides had at the last sync; null when they were never synced. */
  baseline: number | null;
  direction: SyncDirection;
  strategy: ConflictStrategy;
}

export type Decision =
  | { action: 'none'; conflict: false; reason: string }
  | { action: 'write_channel' | 'write_ours'; stock: number; conflict: boolean; reason: string }
  | { action: 'open_conflict'; conflict: true; reason: string };

const ms = (iso: string | null): number => (iso === null ? Number.NaN : Date.parse(iso));

/** Settles a conflict (both sides moved) by the strategy. */
export function settle(c: Pick<Comparison, 'ours' | 'channel' | 'strategy'>, why: string): Decision {
  switch (c.strategy) {
    case 'egdc_wins':
      return { action: 'write_channel', stock: c.ours.stock, conflict: true, reason: `${why}; egdc_wins: our stock is the source of truth` };
    case 'marketplace_wins':
      return { action: 'write_ours', stock: c.channel.stock, conflict: true, reason: `${why}; marketplace_wins: the channel is the source of truth` };
    case 'most_recent': {
      const ours = ms(c.ours.changedAt);
      const channel = ms(c.channel.changedAt);
      if (Number.isFinite(channel) && (!Number.isFinite(ours) || channel > ours)) {
        return { action: 'write_ours', stock: c.channel.stock, conflict: true, reason: `${why}; most_recent: the channel changed last (${c.channel.changedAt} > ${c.ours.changedAt ?? 'unknown'})` };
      }
      return { action: 'write_channel', stock: c.ours.stock, conflict: true, reason: `${why}; most_recent: ours changed last (${c.ours.changedAt ?? 'unknown'} >= ${c.channel.changedAt ?? 'unknown'})` };
    }
    case 'manual':
      return { action: 'open_conflict', conflict: true, reason: `${why}; manual: left for a person to resolve` };
  }
}

export function decide(c: Comparison): Decision {
  const { ours, channel, baseline, direction } = c;
  if (ours.stock === channel.stock) return { action: 'none', conflict: false, reason: 'both sides equal' };
  const outbound = direction !== 'inbound';
  const inbound = direction !== 'outbound';
  if (baseline === null) {
    // never synced: the direction says which side leads; both ways, the strategy decides
    if (direction === 'outbound') return { action: 'write_channel', stock: ours.stock, conflict: false, reason: 'first sync, outbound: ours to the channel' };
    if (direction === 'inbound') return { action: 'write_ours', stock: channel.stock, conflict: false, reason: 'first sync, inbound: the channel to ours' };
    return settle(c, 'first sync and the sides differ');
  }
  const oursMoved = ours.stock !== baseline;
  const channelMoved = channel.stock !== baseline;
  if (oursMoved && channelMoved) return settle(c, `both changed since the last sync (from ${baseline}: ours ${ours.stock}, channel ${channel.stock})`);
  if (oursMoved) {
    return outbound
      ? { action: 'write_channel', stock: ours.stock, conflict: false, reason: 'ours changed since the last sync' }
      : { action: 'none', conflict: false, reason: 'ours changed; an inbound sync leaves the channel alone' };
  }
  return inbound
    ? { action: 'write_ours', stock: channel.stock, conflict: false, reason: 'the channel changed since the last sync' }
    : { action: 'none', conflict: false, reason: 'the channel changed; an outbound sync leaves ours alone' };
}
