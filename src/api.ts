/**
 * The extension's only way to the server: JSON calls to the sandbox's `/hdh/*` routes
 * through JupyterLab's `ServerConnection` (same origin, XSRF token and base URL handled by
 * it). A refusal becomes an `HdhApiError` carrying the HTTP status, the server's one-line
 * reason and a readable message in the user's language (`format.ts`), which every widget
 * shows where the user is looking.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ITrans, englishTrans } from './catalogue-model';
import { refusalMessage, serverReason } from './format';

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
 * A failed `/hdh/*` call: the HTTP status (0 when the server was not reached), the
 * server's one-line `reason` (may be empty) and, as `message`, the readable line.
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

/** Encodes each path segment (ids come from the server, never trusted as path syntax). */
export function hdhPath(...segments: string[]): string {
  return segments.map(s => encodeURIComponent(s)).join('/');
}

export async function requestAPI<T = unknown>(
  endpoint: string,
  init: RequestInit = {},
  query?: Record<string, string>
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let url = URLExt.join(settings.baseUrl, 'hdh', endpoint);
  if (query && Object.keys(query).length > 0) {
    url += URLExt.objectToQueryString(query);
  }
  if (init.body !== undefined && init.body !== null) {
    init = { ...init, headers: { 'Content-Type': 'application/json', ...init.headers } };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    console.warn('HDH: the server could not be reached', url, error);
    throw new HdhApiError(0, '');
  }
  let text = '';
  try {
    text = await response.text();
  } catch (error) {
    console.warn('HDH: the answer could not be read', url, error);
    throw new HdhApiError(0, '');
  }
  if (!response.ok) {
    throw new HdhApiError(response.status, serverReason(text));
  }
  if (!text) {
    return null as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return null as T; // not JSON: each reader treats what it cannot read as empty
  }
}

export function postJSON<T = unknown>(endpoint: string, payload: unknown = {}): Promise<T> {
  return requestAPI<T>(endpoint, { method: 'POST', body: JSON.stringify(payload) });
}
