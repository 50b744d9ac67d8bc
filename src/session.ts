/**
 * The control plane's browser session (`GET <prefix>ui/api/session`: `{user, role,
 * may_review, lang, token, pages}`), fetched in this one place for the whole page: the
 * panel (may this person review?), the review widget and the administrators' audit of
 * every project all ask `pageSession(prefix)`, which fetches it once and gives every
 * caller the same answer until a call is refused with its token (401: the hub session was
 * renewed or the token expired); the session is then fetched again, once, and the refused
 * call retried once with the fresh token (`clientFor`). A login or error state is never
 * kept: the next caller asks again (the person may sign in meanwhile).
 *
 * No DOM; `fetch` is injected (`SessionStore`) or the browser's; unit-tested in
 * `test/session.test.mjs`.
 */

import { oneLine } from './format.js';
import { isObj, parseJson, safePath, str } from './guards.js';
import { ReviewClient, refusalDetail } from './review-model.js';

export interface ISession {
  user: string;
  role: string;
  mayReview: boolean;
  lang: string;
  token: string;
  /** the control plane's own pages (the fallback) */
  pages: string;
}

export type SessionState =
  | { kind: 'ok'; session: ISession }
  | { kind: 'login'; detail: string; loginUrl: string }
  | { kind: 'error'; detail: string };

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** The session's answer: 200 its fields, 401 the login state, anything else an error. */
export function parseSession(status: number, text: string, prefix: string): SessionState {
  const body = parseJson(text);
  const b = isObj(body) ? body : {};
  if (status === 401) {
    return {
      kind: 'login',
      detail: refusalDetail(text, `${status}`),
      loginUrl: safePath(b.login_url) ?? `${prefix}ui/egress/`
    };
  }
  if (status !== 200 || !str(b.user)) {
    return { kind: 'error', detail: refusalDetail(text, `${status}`) };
  }
  return {
    kind: 'ok',
    session: {
      user: str(b.user),
      role: str(b.role),
      mayReview: b.may_review === true,
      lang: str(b.lang) || 'en',
      token: str(b.token),
      pages: safePath(b.pages) ?? `${prefix}ui/egress/`
    }
  };
}

/** `GET <prefix>ui/api/session` with the hub's cookie (same origin only). */
export async function fetchSession(prefix: string, fetchFn: FetchLike): Promise<SessionState> {
  let response: Response;
  try {
    response = await fetchFn(`${prefix}ui/api/session`, {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' }
    });
  } catch (error) {
    return { kind: 'error', detail: oneLine(String(error)) || 'network error' };
  }
  return parseSession(response.status, await response.text(), prefix);
}

/**
 * One control plane's session for the page's life: `get` fetches it once (concurrent
 * callers share the fetch) and keeps an `ok` answer; `renew` fetches it again after a
 * refusal of its token, once for all the calls refused with that token.
 */
export class SessionStore {
  constructor(
    readonly prefix: string,
    readonly fetchFn: FetchLike
  ) {}

  /** The session: the kept one, or fetched (a login or error state is not kept). */
  get(): Promise<SessionState> {
    if (this._current === null) {
      const pending: Promise<SessionState> = fetchSession(this.prefix, this.fetchFn).then(state => {
        if (this._current === pending) {
          this._settled = state;
          if (state.kind !== 'ok') {
            this._current = null; // asked again next time
          }
        }
        return state;
      });
      this._current = pending;
      this._settled = null;
    }
    return this._current;
  }

  /**
   * The session after a call was refused with `staleToken`: fetched again unless another
   * caller did already (a fetch under way, or a kept session with another token).
   */
  renew(staleToken: string): Promise<SessionState> {
    const kept = this._settled;
    if (
      this._current !== null &&
      (kept === null || (kept.kind === 'ok' && kept.session.token !== staleToken))
    ) {
      return this._current;
    }
    this._current = null;
    return this.get();
  }

  /** Forgets the session (the next `get` fetches it). */
  forget(): void {
    this._current = null;
    this._settled = null;
  }

  private _current: Promise<SessionState> | null = null;
  private _settled: SessionState | null = null;
}

/**
 * A client of the control plane's JSON API with `session`'s token; a call refused with a
 * 401 renews the session (`store.renew`) and is retried once with the fresh token.
 */
export function clientFor(store: SessionStore, session: ISession): ReviewClient {
  return new ReviewClient(store.prefix, session.token, store.fetchFn, async stale => {
    const state = await store.renew(stale);
    return state.kind === 'ok' ? state.session.token : null;
  });
}

const stores = new Map<string, SessionStore>();

/** The page's session of the control plane at `prefix` (one per prefix, the browser's fetch). */
export function pageSession(prefix: string): SessionStore {
  let store = stores.get(prefix);
  if (!store) {
    store = new SessionStore(prefix, (url, init) => fetch(url, init));
    stores.set(prefix, store);
  }
  return store;
}
