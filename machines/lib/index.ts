/** Pure helpers every machine (and the services around them) share. */
export { backoffDelay, type Backoff } from './backoff.js';
export { formatDuration, isDuration, parseDuration } from './duration.js';
export { epochMs, isoAt, minutesBetween, plusMs } from './time.js';
export { DEFAULT_EVENTS_ROOT, eventsRoot } from './events.js';
export { uuidFrom, uuidFromHex } from './uuid.js';
export { fullBucket, parseRateRule, refill, reserveToken, type Bucket, type RateRule } from './bucket.js';
