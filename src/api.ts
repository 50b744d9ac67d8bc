/**
 * The panel's only way to the server: JSON calls to the sandbox's `/hdh/*` routes through
 * JupyterLab's `ServerConnection` (same origin, XSRF token and base URL handled by it).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { errorDetail } from './model';

/** A failed `/hdh/*` call: the HTTP status (0 when the server was not reached) and why. */
export class HdhApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string
  ) {
    super(detail);
    this.name = 'HdhApiError';
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
    throw new HdhApiError(0, `The server could not be reached: ${String(error)}`);
  }
  const text = await response.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null; // e.g. the server's HTML 404 page for a route not deployed yet
    }
  }
  if (!response.ok) {
    const detail = errorDetail(body) ?? `${response.status} ${response.statusText}`.trim();
    throw new HdhApiError(response.status, detail);
  }
  return body as T;
}

export function postJSON<T = unknown>(endpoint: string, payload: unknown = {}): Promise<T> {
  return requestAPI<T>(endpoint, { method: 'POST', body: JSON.stringify(payload) });
}
