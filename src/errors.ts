/**
 * How a refused call reads: `HdhApiError`, the HTTP status (0 when the server was not
 * reached), the server's one-line reason and, as `message`, the readable line in the
 * user's language (`format.ts`: `refusalMessage`). Every route's refusal is one: the
 * sandbox's `/hdh/*` (`api.ts`, which re-exports this module) and the control plane's
 * review API (`review-model.ts`: `ReviewError`). No JupyterLab import, so node's tests
 * load it (`lib/errors.js`).
 */

import { ITrans, englishTrans } from './catalogue-model.js';
import { refusalMessage } from './format.js';

/** The language refusals are worded in when a widget does not say (`useApiLanguage`). */
let apiTrans: ITrans = englishTrans;

/** Words the `message` of every later refusal with `trans` (the plugins pass theirs). */
export function useApiLanguage(trans: ITrans): void {
  apiTrans = trans;
}

/** The language refusals and progress are worded in by default (English until set). */
export function apiLanguage(): ITrans {
  return apiTrans;
}

/**
 * A failed call: the HTTP status (0 when the server was not reached), the server's
 * one-line `reason` (may be empty) and, as `message`, the readable line.
 */
export class HdhApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string
  ) {
    super(refusalMessage(status, reason, apiTrans));
    this.name = 'HdhApiError';
  }

  /** The readable line (as `message`), kept for the callers that read `detail`. */
  get detail(): string {
    return this.message;
  }

  /** The readable line in the language of `trans`. */
  describe(trans: ITrans): string {
    return refusalMessage(this.status, this.reason, trans);
  }

  /** The route or the control plane behind it is not deployed or not reachable yet. */
  get notAvailable(): boolean {
    return this.status === 0 || this.status === 404 || this.status === 502 || this.status === 503;
  }
}
