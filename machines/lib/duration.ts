/** ISO-8601 durations (`PT1M30S`), as the saga definitions and configuration write them. */

const DURATION = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** True for what `parseDuration` reads: days, hours, minutes and (fractional) seconds, at least one. */
export const isDuration = (iso: string): boolean => DURATION.test(iso) && iso !== 'P' && !iso.endsWith('T');

/** `PT1M30S` -> 90000. Days, hours, minutes and (fractional) seconds. */
export function parseDuration(iso: string): number {
  const m = DURATION.exec(iso);
  if (!m || !isDuration(iso)) throw new Error(`not an ISO-8601 duration: '${iso}'`);
  const [, d, h, min, s] = m.map((x) => (x === undefined ? 0 : Number(x)));
  return Math.round((((d! * 24 + h!) * 60 + min!) * 60 + s!) * 1000);
}

/** 150000 -> `PT2M30S`; whole seconds unless under one. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total === 0) return 'PT0S';
  let rest = total;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  const secs = h === 0 && m === 0 && s < 1 ? String(s) : String(Math.round(s));
  return `PT${h ? `${h}H` : ''}${m ? `${m}M` : ''}${secs !== '0' ? `${secs}S` : ''}`;
}
