import type { MiddlewareHandler } from 'hono';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import type { Env } from '../env.js';

/** The deepest JSON a request body may nest (objects and arrays); deeper is a 400 before parsing. */
export const MAX_JSON_DEPTH = 64;

// C0 controls and DEL: never part of an id, a filter or a cursor; PostgreSQL refuses NUL in text
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Refuses input that the routes' schemas would otherwise meet too late: a control character in
 * the path or the query (PostgreSQL cannot store a NUL and no id has one), a JSON body nested
 * deeper than MAX_JSON_DEPTH (a recursive parse, fingerprint or validation of it exhausts the
 * stack), and a `\u0000` escape in a JSON string (jsonb refuses it). Each is a 400 problem
 * naming what was wrong, never a 500.
 */
export function guardInput(): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (CONTROL.test(c.req.path)) {
      throw new DomainError(DomainCode.ValidationFailed, 'the path contains a control character', {
        target: 'path',
        issues: [{ path: ['path'], code: 'invalid_string', message: 'control characters (such as NUL) are not allowed in a path' }],
      });
    }
    const search = c.req.url.indexOf('?');
    if (search >= 0) {
      for (const [key, value] of new URLSearchParams(c.req.url.slice(search + 1))) {
        if (CONTROL.test(key) || CONTROL.test(value)) {
          throw new DomainError(DomainCode.ValidationFailed, `query parameter '${key.replace(CONTROL, '?')}' contains a control character`, {
            target: 'query',
            issues: [{ path: [key.replace(CONTROL, '?')], code: 'invalid_string', message: 'control characters (such as NUL) are not allowed' }],
          });
        }
      }
    }
    const method = c.req.method;
    // only a request that has a body is read here: reading one makes node-server build the full
    // Request, which a body-less command (activate, suspend) must not pay for
    const length = c.req.header('content-length');
    const hasBody = length !== undefined ? length !== '0' : c.req.header('transfer-encoding') !== undefined;
    if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && hasBody && c.req.header('content-type') !== undefined) {
      const text = await c.req.text(); // cached: the route's validator parses the same text
      const depth = jsonDepth(text, MAX_JSON_DEPTH);
      if (depth > MAX_JSON_DEPTH) {
        throw new DomainError(DomainCode.MalformedJson, `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`, { maxDepth: MAX_JSON_DEPTH });
      }
      if (/\\u0000/i.test(text)) {
        throw new DomainError(DomainCode.MalformedJson, 'the JSON body contains a NUL character (\\u0000), which cannot be stored', {});
      }
    }
    await next();
  };
}

/** How deep `text` nests objects and arrays, outside strings; stops counting past `stopAbove`. */
export function jsonDepth(text: string, stopAbove: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92) i++; // backslash: skip the escaped character
      else if (ch === 34) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) {
      if (++depth > max && (max = depth) > stopAbove) return max;
    } else if (ch === 125 || ch === 93) depth--;
  }
  return max;
}
