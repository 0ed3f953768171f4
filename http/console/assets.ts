import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Asset {
  body: Buffer;
  type: string;
  /** Content hash: the URL changes with the file, so it may be cached for good. */
  hash: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const load = (path: string, type: string): Asset => {
  const body = readFileSync(path);
  return { body, type, hash: createHash('sha256').update(body).digest('hex').slice(0, 12) };
};

/**
 * The console's files, read once: htmx and its SSE extension as npm installed them (no CDN, no
 * build step), and our stylesheet.
 */
export const ASSETS: Record<string, Asset> = {
  'htmx.min.js': load(require.resolve('htmx.org/dist/htmx.min.js'), 'text/javascript; charset=utf-8'),
  'sse.js': load(require.resolve('htmx-ext-sse/sse.js'), 'text/javascript; charset=utf-8'),
  'console.css': load(join(here, 'assets', 'console.css'), 'text/css; charset=utf-8'),
};

/** The URL of an asset, versioned by its content. */
export function asset(name: keyof typeof ASSETS & string): string {
  return `/console/assets/${name}?v=${ASSETS[name]!.hash}`;
}
