/**
 * The extension's only way to the server: JSON calls to the sandbox's `/hdh/*` routes
 * through JupyterLab's `ServerConnection` (same origin, XSRF token and base URL handled by
 * it). A refusal becomes an `HdhApiError` (`errors.ts`) carrying the HTTP status, the
 * server's one-line reason and a readable message in the user's language (`format.ts`),
 * which every widget shows where the user is looking.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { HdhApiError } from './errors';
import { serverReason } from './format';
import { parseJson } from './guards';

export { HdhApiError, apiLanguage, useApiLanguage } from './errors';

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
  return parseJson(text) as T; // not JSON: null, which each reader treats as empty
}

export function postJSON<T = unknown>(endpoint: string, payload: unknown = {}): Promise<T> {
  return requestAPI<T>(endpoint, { method: 'POST', body: JSON.stringify(payload) });
}
