/**
 * The type guards every reader of a server answer uses (`model.ts`, `catalogue-model.ts`,
 * `audit-model.ts`, `review-model.ts`, `format.ts`): an answer is `unknown` until one of
 * these says what it is. Pure functions, no import; unit-tested in `test/guards.test.mjs`.
 *
 * The modules node's tests load (`lib/*.js` as ES modules) import this one as
 * `./guards.js`: node resolves no extension-less relative import.
 */

/** A JSON object (not null, not an array). */
export type Obj = Record<string, unknown>;

/** Whether `v` is a JSON object (not null, not an array). */
export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `v` if it is a string, else `''`. */
export function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** `v` if it is a string, a finite number as its decimal text (an id: `7` → `'7'`), else `''`. */
export function textOf(v: unknown): string {
  if (typeof v === 'string') {
    return v;
  }
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : '';
}

/** `v` if it is an array, else `[]`. */
export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** An answer's text as JSON; `null` when it is empty or not JSON (an HTML error page). */
export function parseJson(text: string): unknown {
  if (!text) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A same-origin path from the server (`/services/hdh/...`), or null for anything else. */
export function safePath(v: unknown): string | null {
  const s = str(v);
  return s.startsWith('/') && !s.startsWith('//') && !/[\\\s]/.test(s) ? s : null;
}
