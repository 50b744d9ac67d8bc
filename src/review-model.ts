/**
 * The review widget's model (`review.ts`): where the control plane is from JupyterLab's
 * base URL, the queue, one request as a view model, and the reviewer's actions (the
 * session, with its token, comes from `session.ts`). Pure functions and one small client whose `fetch` is injected (the
 * browser's in the widget, a fake in test/review-model.test.mjs); no DOM. User strings go
 * through `trans.__`.
 *
 * Review data never passes through a sandbox: the browser talks to the control plane at
 * the same origin under the hub's service prefix (`/services/hdh/`), with the hub's login
 * cookie and, for the JSON API, the session's anti-forgery token in `X-HDH-Token` (a
 * cross-site page cannot set that header, so the cookie alone never acts).
 */

import { ITrans } from './catalogue-model';
import { HdhApiError } from './errors.js';
import { oneLine, serverReason } from './format.js';
import { Obj, arr, isObj, parseJson, safePath, str } from './guards.js';
import type { FetchLike } from './session';
import { FINAL, VOTING } from './states.js';

/** The header that carries the session's anti-forgery token to `/api/egress/...`. */
export const TOKEN_HEADER = 'X-HDH-Token';
/** The name of the reviewers' named server (hub side: no dataset, no project, no bridge). */
export const REVIEW_SERVER = 'review';

const count = (v: unknown): number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0;

/** The path part of a base URL (`http://h/user/bob/review/` → `/user/bob/review/`). */
function pathOf(baseUrl: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(baseUrl);
  let path = m ? (m[1] ?? '/') : baseUrl;
  path = path.split(/[?#]/)[0];
  if (!path.startsWith('/')) {
    path = '/' + path;
  }
  return path.endsWith('/') ? path : path + '/';
}

/**
 * The control plane's prefix for a lab at `baseUrl`: the hub's prefix (what comes before
 * `user/<name>/[<server>/]`) + `services/hdh/`. A lab outside the hub (no `user/<name>/`)
 * gets `/services/hdh/` under its own base.
 */
export function controlPlanePrefix(baseUrl: string): string {
  const path = pathOf(baseUrl);
  const m = /^(.*?\/)user\/[^/]+\/(?:[^/]+\/)?$/.exec(path);
  return (m ? m[1] : path) + 'services/hdh/';
}

/** The named server a lab at `baseUrl` runs in (`''` for the default server or none). */
export function serverName(baseUrl: string): string {
  const m = /\/user\/[^/]+\/([^/]+)\/$/.exec(pathOf(baseUrl));
  return m ? decodeURIComponent(m[1]) : '';
}

/** The reviewers' workspace: no dataset, no bridge; the review widget opens on load. */
export function isReviewWorkspace(baseUrl: string): boolean {
  return serverName(baseUrl) === REVIEW_SERVER;
}

/**
 * A refused or failed call to the control plane: an `HdhApiError` (its status, 0 when not
 * reached, and its readable line in the user's language) whose `detail` is the control
 * plane's own one line (what the review widget says after its own words), and on a 401
 * where to sign in.
 */
export class ReviewError extends HdhApiError {
  constructor(
    status: number,
    detail: string,
    readonly loginUrl: string | null = null
  ) {
    super(status, detail);
    this.name = 'ReviewError';
  }

  /** The control plane's one-line reason (its `detail`; the status when it gave none). */
  get detail(): string {
    return this.reason;
  }
}

/** A control-plane refusal's one line: its `detail` (validation errors with their field). */
export function refusalDetail(text: string, fallback: string): string {
  return serverReason(text, { fields: true }) || fallback;
}

// --- the queue ------------------------------------------------------------------------------

export interface IQueueItem {
  id: number;
  project: string;
  title: string;
  author: string;
  state: string;
  round: number;
  files: number;
  submittedAt: string | null;
  reviewers: string[];
  awaitingMe: boolean;
}

function parseItem(v: unknown): IQueueItem | null {
  if (!isObj(v) || typeof v.id !== 'number' || !Number.isInteger(v.id) || v.id <= 0) {
    return null;
  }
  return {
    id: v.id,
    project: str(v.project),
    title: str(v.title),
    author: str(v.author),
    state: str(v.state),
    round: count(v.round),
    files: count(v.files),
    submittedAt: str(v.submitted_at) || null,
    reviewers: arr(v.reviewers)
      .map(str)
      .filter(s => s),
    awaitingMe: v.awaiting_me === true
  };
}

/** The queue (`GET /api/egress/requests`), malformed rows skipped, in review order. */
export function parseQueue(body: unknown): IQueueItem[] {
  return sortQueue(
    arr(body)
      .map(parseItem)
      .filter((r): r is IQueueItem => r !== null)
  );
}

const time = (iso: string | null): number => {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? Infinity : t;
};

/** Awaiting me first, then the oldest in review first (never submitted last), then by id. */
export function sortQueue(items: IQueueItem[]): IQueueItem[] {
  return [...items].sort(
    (a, b) =>
      Number(b.awaitingMe) - Number(a.awaitingMe) ||
      time(a.submittedAt) - time(b.submittedAt) ||
      a.id - b.id
  );
}

/** How long ago `iso` was, as a person reads it ("3 min", "3 h", "2 d"); '' when unknown. */
export function ageText(iso: string | null, now: number, trans: ITrans): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) {
    return '';
  }
  const minutes = Math.floor(Math.max(0, now - t) / 60_000);
  if (minutes < 1) {
    return trans.__('just now');
  }
  if (minutes < 60) {
    return trans.__('%1 min', minutes);
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    return trans.__('%1 h', hours);
  }
  return trans.__('%1 d', Math.floor(hours / 24));
}

/** A request's state as a person reads it. */
export function stateLabel(state: string, trans: ITrans): string {
  switch (state) {
    case 'draft':
      return trans.__('draft');
    case 'submitted':
      return trans.__('submitted');
    case 'partially_reviewed':
      return trans.__('partially reviewed');
    case 'reviewed':
      return trans.__('reviewed');
    case 'approved':
      return trans.__('approved');
    case 'returned':
      return trans.__('returned');
    case 'rejected':
      return trans.__('rejected');
    case 'releasing':
      return trans.__('releasing');
    case 'released':
      return trans.__('released');
    case 'withdrawn':
      return trans.__('withdrawn');
    default:
      return state;
  }
}

/** A file's check status as a person reads it. */
export function checkLabel(status: string | null, trans: ITrans): string {
  switch (status) {
    case 'pass':
      return trans.__('checks passed');
    case 'review':
      return trans.__('checks: to review');
    case 'fail':
      return trans.__('checks failed');
    default:
      return trans.__('not checked');
  }
}

export type Decision = 'approve' | 'changes' | 'reject';
export const DECISIONS: readonly Decision[] = ['approve', 'changes', 'reject'];

/** A vote's decision as a person reads it. */
export function decisionLabel(decision: string, trans: ITrans): string {
  switch (decision) {
    case 'approve':
      return trans.__('approve');
    case 'changes':
      return trans.__('request changes');
    case 'reject':
      return trans.__('reject');
    default:
      return decision;
  }
}

// --- one request ----------------------------------------------------------------------------

export interface IFlagView {
  rule: string;
  severity: string;
  message: string;
  location: string;
}

export interface IVoteView {
  reviewer: string;
  decision: string;
  at: string;
}

export interface IExceptionView {
  reviewer: string;
  reason: string;
}

export interface IProvenanceEntry {
  kind: 'file' | 'execution' | 'notebook' | 'code_file' | 'other';
  seq: number | null;
  time: string;
  user: string;
  path: string;
  code: string;
  truncated: boolean;
}

export interface IFileView {
  path: string;
  role: string;
  sha256: string;
  size: number;
  checkStatus: string | null;
  checkSummary: string;
  checkError: string;
  flags: IFlagView[];
  voteCount: number;
  votes: IVoteView[];
  exceptions: IExceptionView[];
  provenance: IProvenanceEntry[];
  /** the viewer may vote on it now (an output file of a request in voting, no vote yet) */
  canVote: boolean;
  /** approving it needs an exception with a reason (it failed, or was not, checked) */
  needsException: boolean;
  /** the viewer may record an exception now (gated, voting, none of theirs yet) */
  canException: boolean;
  myVote: string | null;
}

export interface ICommentView {
  author: string;
  body: string;
  path: string | null;
  round: number;
  at: string;
}

export interface IRequestView {
  id: number;
  project: string;
  title: string;
  author: string;
  state: string;
  round: number;
  viewer: string;
  files: IFileView[];
  publicComments: ICommentView[];
  privateComments: ICommentView[];
  /** what applies now (the workflow still checks every step) */
  mayDecide: boolean;
  mayRelease: boolean;
  mayComment: boolean;
  mayCommentPrivately: boolean;
}

function location(v: unknown): string {
  if (isObj(v)) {
    return Object.entries(v)
      .map(([k, x]) => `${k}=${typeof x === 'string' ? x : JSON.stringify(x)}`)
      .join(', ');
  }
  return str(v);
}

function parseProvenance(v: unknown): IProvenanceEntry | null {
  if (!isObj(v)) {
    return null;
  }
  const k = str(v.kind);
  const kind = (
    ['file', 'execution', 'notebook', 'code_file'].includes(k) ? k : 'other'
  ) as IProvenanceEntry['kind'];
  return {
    kind,
    seq: typeof v.seq === 'number' && Number.isInteger(v.seq) ? v.seq : null,
    time: str(v.time) || str(v.snapshot_at),
    user: str(v.user),
    path: str(v.path),
    code: str(v.code),
    truncated: v.truncated === true
  };
}

function parseComment(v: unknown): (ICommentView & { visibility: string }) | null {
  if (!isObj(v) || !str(v.body)) {
    return null;
  }
  return {
    author: str(v.author),
    body: str(v.body),
    path: str(v.path) || null,
    round: count(v.round),
    at: str(v.at),
    visibility: str(v.visibility)
  };
}

/**
 * One request (`GET /api/egress/requests/{id}`) as the reviewer `me` sees it: votes and
 * exceptions as the API gives them (already blinded), comments split public / private,
 * and which of the reviewer's actions apply now.
 */
export function requestView(body: unknown, me: string): IRequestView | null {
  if (!isObj(body) || typeof body.id !== 'number') {
    return null;
  }
  const state = str(body.state);
  const viewer = str(body.viewer);
  const voting = viewer === 'reviewer' && VOTING.has(state);
  const files: IFileView[] = [];
  for (const f of arr(body.files)) {
    if (!isObj(f) || !str(f.path)) {
      continue;
    }
    const report = isObj(f.check_report) ? f.check_report : {};
    const status = str(f.check_status) || null;
    const votes = arr(f.votes)
      .filter(isObj)
      .map(v => ({ reviewer: str(v.reviewer), decision: str(v.decision), at: str(v.at) }));
    const exceptions = arr(f.exceptions)
      .filter(isObj)
      .map(e => ({ reviewer: str(e.reviewer), reason: str(e.reason) }));
    const mine = votes.find(v => v.reviewer === me);
    const gated = status !== 'pass' && status !== 'review';
    const output = str(f.role) === 'output';
    files.push({
      path: str(f.path),
      role: str(f.role),
      sha256: str(f.sha256),
      size: count(f.size),
      checkStatus: status,
      checkSummary: str(report.summary),
      checkError: str(report.error),
      flags: arr(report.flags)
        .filter(isObj)
        .map(fl => ({
          rule: str(fl.rule),
          severity: str(fl.severity),
          message: str(fl.message),
          location: location(fl.location)
        })),
      voteCount: count(f.vote_count),
      votes,
      exceptions,
      provenance: arr(f.provenance)
        .map(parseProvenance)
        .filter((p): p is IProvenanceEntry => p !== null),
      canVote: voting && output && !mine && count(f.vote_count) < 2,
      needsException: output && gated,
      canException: voting && output && gated && !exceptions.some(e => e.reviewer === me),
      myVote: mine ? mine.decision : null
    });
  }
  const comments = arr(body.comments)
    .map(parseComment)
    .filter((c): c is ICommentView & { visibility: string } => c !== null);
  const strip = (c: ICommentView): ICommentView => ({
    author: c.author,
    body: c.body,
    path: c.path,
    round: c.round,
    at: c.at
  });
  return {
    id: body.id,
    project: str(body.project),
    title: str(body.title),
    author: str(body.author),
    state,
    round: count(body.round),
    viewer,
    files,
    publicComments: comments.filter(c => c.visibility !== 'private').map(strip),
    privateComments: comments.filter(c => c.visibility === 'private').map(strip),
    mayDecide: viewer === 'reviewer' && state === 'reviewed',
    mayRelease: (viewer === 'reviewer' || viewer === 'operator') && state === 'approved',
    mayComment: (viewer === 'reviewer' || viewer === 'member') && !FINAL.has(state),
    mayCommentPrivately: viewer === 'reviewer' && !FINAL.has(state)
  };
}

/** What produced a file, one line per provenance entry (its code shown beneath). */
export function provenanceLabel(p: IProvenanceEntry, trans: ITrans): string {
  const when = p.time ? p.time.replace('T', ' ').slice(0, 19) + ' UTC' : '';
  switch (p.kind) {
    case 'file':
      return trans.__('The file, snapshotted %1', when);
    case 'execution':
      return trans.__('Cell run by %1 at %2 (audit #%3)', p.user, when, p.seq ?? '?');
    case 'notebook':
      return trans.__('Notebook %1 saved by %2 at %3', p.path, p.user, when);
    case 'code_file':
      return trans.__('Code file %1 of the request', p.path);
    default:
      return trans.__('Other entry');
  }
}

// --- addresses ------------------------------------------------------------------------------

/** The inert rendering of one file (a whole document served under a sandboxing CSP). */
export function renderUrl(prefix: string, id: number, path: string): string {
  return `${prefix}ui/egress/requests/${id}/render?path=${encodeURIComponent(path)}`;
}

/** The request's web page (the fallback, with the same actions as forms). */
export function pageUrl(prefix: string, id: number): string {
  return `${prefix}ui/egress/requests/${id}`;
}

// --- the client -----------------------------------------------------------------------------

export type RequestDecision = 'approve' | 'return' | 'reject';

/**
 * The JSON API at `<prefix>api/egress/` with the hub's cookie and the session's token;
 * every refusal is a `ReviewError` (an `HdhApiError`) with the API's one-line `detail`.
 */
export class ReviewClient {
  /**
   * `renew`, given the token a call was refused with (401), answers a fresh one (or null):
   * the call is then retried once with it (`session.ts`: `clientFor`).
   */
  constructor(
    readonly prefix: string,
    token: string,
    private readonly fetchFn: FetchLike,
    private readonly renew?: (staleToken: string) => Promise<string | null>
  ) {
    this._token = token;
  }

  /** The session's token the calls carry (a fresh one after a renewal). */
  get token(): string {
    return this._token;
  }

  /** The airlock's route `path` under `<prefix>api/egress/`. */
  call(path: string, method = 'GET', payload?: unknown): Promise<unknown> {
    return this.send(`${this.prefix}api/egress/${path}`, method, payload);
  }

  /** A page of project `project`'s audited code (`audit-model.ts` reads it). */
  auditCode(project: string, query: Record<string, string>): Promise<unknown> {
    const qs = new URLSearchParams(query).toString();
    const url = `${this.prefix}api/projects/${encodeURIComponent(project)}/audit/code`;
    return this.send(qs ? `${url}?${qs}` : url);
  }

  /** A page of every project's audited code (administrators; `project` may filter). */
  auditAll(query: Record<string, string>): Promise<unknown> {
    const qs = new URLSearchParams(query).toString();
    return this.send(`${this.prefix}api/audit/code${qs ? `?${qs}` : ''}`);
  }

  private async send(
    url: string,
    method = 'GET',
    payload?: unknown,
    retried = false
  ): Promise<unknown> {
    const token = this._token;
    const headers: Record<string, string> = {
      Accept: 'application/json',
      [TOKEN_HEADER]: token
    };
    const init: RequestInit = { method, credentials: 'same-origin', cache: 'no-store', headers };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    let response: Response;
    let text: string;
    try {
      response = await this.fetchFn(url, init);
      text = await response.text();
    } catch (error) {
      throw new ReviewError(0, oneLine(String(error)) || 'network error');
    }
    const body = parseJson(text);
    if (response.status === 401 && this.renew && !retried) {
      // the token expired or the hub session changed: once, with the session's fresh token
      const fresh = await this.renew(token);
      if (fresh && fresh !== token) {
        this._token = fresh;
        return this.send(url, method, payload, true);
      }
    }
    if (!response.ok) {
      const b = isObj(body) ? body : {};
      throw new ReviewError(
        response.status,
        refusalDetail(text, `${response.status} ${response.statusText}`.trim()),
        safePath(b.login_url)
      );
    }
    return body;
  }

  async queue(): Promise<IQueueItem[]> {
    return parseQueue(await this.call('requests'));
  }

  async request(id: number, me: string): Promise<IRequestView> {
    const view = requestView(await this.call(`requests/${id}`), me);
    if (view === null) {
      throw new ReviewError(0, `request #${id}: unreadable answer`);
    }
    return view;
  }

  vote(id: number, path: string, decision: Decision, exceptionReason?: string): Promise<unknown> {
    const body: Obj = { path, decision };
    if (exceptionReason !== undefined && exceptionReason.trim()) {
      body.exception_reason = exceptionReason.trim();
    }
    return this.call(`requests/${id}/votes`, 'POST', body);
  }

  exception(id: number, path: string, reason: string): Promise<unknown> {
    return this.call(`requests/${id}/exceptions`, 'POST', { path, reason });
  }

  comment(
    id: number,
    body: string,
    visibility: 'public' | 'private',
    path?: string
  ): Promise<unknown> {
    const payload: Obj = { body, visibility };
    if (path) {
      payload.path = path;
    }
    return this.call(`requests/${id}/comments`, 'POST', payload);
  }

  decide(id: number, decision: RequestDecision, reason = ''): Promise<unknown> {
    return this.call(`requests/${id}/${decision}`, 'POST', { reason });
  }

  release(id: number): Promise<unknown> {
    return this.call(`requests/${id}/release`, 'POST');
  }

  private _token: string;
}
