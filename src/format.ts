/**
 * How the extension tells people things, in their language: numbers and dates in
 * JupyterLab's display language (the translator's `languageCode`, e.g. `fr-FR` → `12 345`),
 * every refusal of an `/hdh/*` route as one readable line (a translated lead and the
 * server's own one-line reason, never a status code alone, a JSON blob or a stack), and the
 * busy state of a button while its action runs. Pure functions but `whileBusy` (which only
 * touches the elements it is given); unit-tested in `test/format.test.mjs`.
 */

import type { ITrans } from './catalogue-model'; // a type only
import { arr, isObj, str } from './guards.js';

/** The longest server reason kept (a guard or control-plane reason is one sentence or two). */
export const REASON_MAX = 400;

/**
 * The BCP 47 language of `trans`: a JupyterLab `TranslationBundle` knows its locale
 * (`getLocale()`, the translator's `languageCode`); without one, English.
 */
export function languageOf(trans: ITrans): string {
  const t = trans as ITrans & { getLocale?: () => unknown };
  let code = '';
  try {
    const v = typeof t.getLocale === 'function' ? t.getLocale() : '';
    code = typeof v === 'string' ? v.replace(/_/g, '-') : '';
  } catch {
    code = '';
  }
  try {
    return Intl.getCanonicalLocales(code || 'en')[0] ?? 'en';
  } catch {
    return 'en'; // not a language tag (e.g. "default")
  }
}

/** A count for people, grouped as the language groups it (`12,345`, `12 345`); `—` if unknown. */
export function formatNumber(n: number | null, trans: ITrans): string {
  if (n === null || !Number.isFinite(n)) {
    return '—';
  }
  return new Intl.NumberFormat(languageOf(trans)).format(n);
}

/** A share given in percent (`12.5` → `12.5%`, `12,5 %`). */
export function formatPercent(pct: number, trans: ITrans): string {
  return new Intl.NumberFormat(languageOf(trans), {
    style: 'unit',
    unit: 'percent',
    maximumFractionDigits: 2
  }).format(pct);
}

function parseDate(iso: string): Date | null {
  if (!iso) {
    return null;
  }
  // a bare date or a time without a zone is UTC (the server's timestamps are)
  const s = /^\d{4}-\d{2}-\d{2}$/.test(iso)
    ? `${iso}T00:00:00Z`
    : /[zZ]|[+-]\d{2}:?\d{2}$/.test(iso.slice(10))
      ? iso
      : `${iso}Z`;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** A day (`4 Dec 2026`, `4 déc. 2026`); what it was given when it is not a date. */
export function formatDate(iso: string, trans: ITrans): string {
  const d = parseDate(iso);
  if (!d) {
    return iso;
  }
  return new Intl.DateTimeFormat(languageOf(trans), {
    dateStyle: 'medium',
    timeZone: 'UTC'
  }).format(d);
}

/** A moment, to the second, in UTC (the audit log's clock), followed by `UTC`. */
export function formatDateTime(iso: string, trans: ITrans): string {
  const d = parseDate(iso);
  if (!d) {
    return iso;
  }
  const text = new Intl.DateTimeFormat(languageOf(trans), {
    dateStyle: 'medium',
    timeStyle: 'medium',
    timeZone: 'UTC'
  }).format(d);
  return `${text} UTC`;
}

/** One line: whitespace collapsed, cut at `REASON_MAX` characters. */
export function oneLine(text: string): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > REASON_MAX ? `${s.slice(0, REASON_MAX - 1)}…` : s;
}

/** How `serverReason` reads a validation error list: with each error's field or without. */
export interface IReasonOptions {
  /** each FastAPI validation error with its field (`reason: String should…`), as the
   * review widget shows them; the panel shows the message alone */
  fields?: boolean;
}

function validationError(x: unknown, fields: boolean): string {
  if (!isObj(x)) {
    return typeof x === 'string' ? x : '';
  }
  if (fields) {
    return [arr(x.loc).slice(1).join('.'), str(x.msg)].filter(p => p).join(': ');
  }
  return str(x.msg);
}

function reasonOfJson(body: unknown, fields: boolean): string {
  if (typeof body === 'string') {
    return body;
  }
  if (!isObj(body)) {
    return '';
  }
  for (const key of ['detail', 'message', 'reason', 'error']) {
    const d = body[key];
    if (typeof d === 'string' && d.trim()) {
      return d;
    }
    if (Array.isArray(d)) {
      // FastAPI's validation errors: [{loc, msg, type}, …]
      const parts = d.map(x => validationError(x, fields)).filter(p => p);
      if (parts.length) {
        return parts.join('; ');
      }
    }
    if (isObj(d)) {
      const inner = reasonOfJson(d, fields);
      if (inner) {
        return inner;
      }
    }
  }
  return '';
}

/**
 * The server's one-line reason in an error answer's body: JSON `detail`, `message` or
 * `reason` (FastAPI's, jupyter_server's and the guard's), or a text answer's first line; an
 * HTML page (a proxy's error page) or nothing gives `''`.
 */
export function serverReason(text: string, options: IReasonOptions = {}): string {
  const t = text.trim();
  if (!t) {
    return '';
  }
  if (t.startsWith('{') || t.startsWith('[') || t.startsWith('"')) {
    try {
      return oneLine(reasonOfJson(JSON.parse(t), options.fields === true));
    } catch {
      // not JSON after all: read as text
    }
  }
  if (t.startsWith('<')) {
    return ''; // markup is never shown as text
  }
  return oneLine(t.split('\n').find(l => l.trim()) ?? '');
}

const BUDGET = /^\s*daily display budget reached\s*[:.]?\s*/i;

/**
 * The readable line for a refusal: `status` (0 when the server was not reached) and the
 * server's `reason`, a lead in the user's language for the usual cases.
 */
export function refusalMessage(status: number, reason: string, trans: ITrans): string {
  const __ = trans.__.bind(trans);
  const why = oneLine(reason);
  const lead = (withReason: string, without: string) => (why ? withReason : without);
  if (status === 0) {
    return __('The server could not be reached: check the connection, then try again.');
  }
  if (status === 401 || (status === 403 && /^not authenticated\b/i.test(why))) {
    return __('Your session has ended: reload the page to sign in again.');
  }
  if (status === 403) {
    return lead(__('Not allowed: %1', why), __('Not allowed.'));
  }
  if (status === 404) {
    return lead(__('Not found: %1', why), __('Not found.'));
  }
  if (status === 409) {
    return lead(
      __('Not possible in the current state: %1', why),
      __('Not possible in the current state.')
    );
  }
  if (status === 413) {
    return lead(__('Too large: %1', why), __('Too large.'));
  }
  if (status === 429) {
    if (BUDGET.test(why) || /display budget/i.test(why)) {
      const rest = why.replace(BUDGET, '');
      return __('Daily display budget reached: %1', rest || why);
    }
    return lead(__('Limit reached: %1', why), __('Limit reached: try again later.'));
  }
  if (status === 502 || status === 503 || status === 504) {
    return lead(
      __("The sandbox's HDH service (its API bridge) is down or absent: %1", why),
      __("The sandbox's HDH service (its API bridge) is down or absent: try again in a moment.")
    );
  }
  if (status >= 500) {
    return lead(
      __('The server failed (HTTP %1): %2', status, why),
      __('The server failed (HTTP %1): try again later.', status)
    );
  }
  return lead(__('Refused: %1', why), __('The request was refused (HTTP %1).', status));
}

/** Any error as one readable line: a refusal's own words, else the error's message. */
export function errorText(error: unknown, trans: ITrans): string {
  const e = error as { describe?: (t: ITrans) => string } | null;
  if (e && typeof e.describe === 'function') {
    return e.describe(trans);
  }
  if (error instanceof Error) {
    return oneLine(error.message);
  }
  return oneLine(String(error));
}

/**
 * Runs `action` with `controls` disabled and marked busy (`aria-busy`, class
 * `jp-hdh-busy`), `label` shown on the first one meanwhile; they come back as they were,
 * failure or not. A control already busy does not start the action again (no double
 * submit): that answers `undefined`.
 */
export async function whileBusy<T>(
  controls: (HTMLButtonElement | HTMLInputElement | HTMLSelectElement)[],
  action: () => Promise<T>,
  label?: string
): Promise<T | undefined> {
  if (controls.some(c => c.classList.contains('jp-hdh-busy'))) {
    return undefined;
  }
  const before = controls.map(c => c.disabled);
  const first = controls[0];
  const text = first?.textContent ?? '';
  for (const c of controls) {
    c.disabled = true;
    c.classList.add('jp-hdh-busy');
    c.setAttribute('aria-busy', 'true');
  }
  if (first && label) {
    first.textContent = label;
  }
  try {
    return await action();
  } finally {
    controls.forEach((c, i) => {
      c.disabled = before[i];
      c.classList.remove('jp-hdh-busy');
      c.removeAttribute('aria-busy');
    });
    if (first && label) {
      first.textContent = text;
    }
  }
}
