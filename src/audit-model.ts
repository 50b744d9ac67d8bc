/**
 * The code audit view's model (`GET /hdh/audit/code`): reading a page of audited code, the
 * query of the filters, the grouping by person and notebook, and the chain's banner. Pure
 * functions, unit-tested (test/audit.test.mjs); user strings through `trans.__`.
 */

import { ITrans } from './catalogue-model';
import { isObj, str } from './guards.js';

export const CODE_KINDS = ['cell', 'terminal', 'save', 'template'] as const;
export type CodeKind = (typeof CODE_KINDS)[number];
/** Events asked for per page ("Load more" asks for the next). */
export const AUDIT_PAGE = 100;

export interface ICodeEvent {
  seq: number;
  ts: string;
  user: string;
  project: string;
  kind: CodeKind;
  notebook: string;
  kernel: string;
  terminal: string;
  code: string;
  verified: boolean;
}

export interface IChain {
  ok: boolean;
  verifiedTo: number;
  brokenSeq: number | null;
  reason: string;
}

export interface ICodePage {
  project: string;
  events: ICodeEvent[];
  nextCursor: number | null;
  chain: IChain;
}

export interface IAuditFilters {
  /** administrators' view of every project: one project only */
  project?: string;
  user?: string;
  kind?: string;
  notebook?: string;
  since?: string;
  until?: string;
}

const int = (v: unknown): number | null =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;

function parseEvent(v: unknown): ICodeEvent | null {
  if (!isObj(v)) {
    return null;
  }
  const seq = int(v.seq);
  const kind = str(v.kind) as CodeKind;
  if (seq === null || !CODE_KINDS.includes(kind) || !str(v.user)) {
    return null;
  }
  return {
    seq,
    ts: str(v.ts),
    user: str(v.user),
    project: str(v.project),
    kind,
    notebook: str(v.notebook),
    kernel: str(v.kernel),
    terminal: str(v.terminal),
    code: str(v.code),
    verified: v.verified === true
  };
}

/** A page of `/hdh/audit/code`, skipping malformed events; a chain it cannot read is not ok. */
export function parseCodePage(body: unknown): ICodePage {
  const b = isObj(body) ? body : {};
  const events = (Array.isArray(b.events) ? b.events : [])
    .map(parseEvent)
    .filter((e): e is ICodeEvent => e !== null);
  const c = isObj(b.chain) ? b.chain : {};
  return {
    project: str(b.project),
    events,
    nextCursor: int(b.next_cursor),
    chain: {
      ok: c.ok === true,
      verifiedTo: int(c.verified_to) ?? 0,
      brokenSeq: int(c.broken_seq),
      reason: str(c.reason)
    }
  };
}

/** The query of the filters that are set (and the cursor of the next page). */
export function auditQuery(filters: IAuditFilters, cursor?: number | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(filters)) {
    const t = typeof v === 'string' ? v.trim() : '';
    if (t) {
      out[k] = t;
    }
  }
  out.limit = String(AUDIT_PAGE);
  if (cursor) {
    out.cursor = String(cursor);
  }
  return out;
}

/** Where an event happened: its notebook or file, its terminal, or its kernel. */
export function placeOf(e: ICodeEvent, trans: ITrans): string {
  if (e.notebook) {
    return e.notebook;
  }
  if (e.terminal) {
    return trans.__('Terminal %1', e.terminal);
  }
  if (e.kernel) {
    return trans.__('Kernel %1', e.kernel.slice(0, 8));
  }
  return trans.__('Unknown place');
}

export interface IPlaceGroup {
  place: string;
  events: ICodeEvent[];
}

export interface IPersonGroup {
  user: string;
  places: IPlaceGroup[];
}

/**
 * Events grouped by person, then by notebook (or terminal, or kernel; prefixed by the project
 * in the administrators' view of every project): people and places in the order of their
 * newest event, events newest first.
 */
export function groupEvents(
  events: ICodeEvent[],
  trans: ITrans,
  withProject = false
): IPersonGroup[] {
  const sorted = [...events].sort((a, b) => b.seq - a.seq);
  const people = new Map<string, Map<string, ICodeEvent[]>>();
  for (const e of sorted) {
    const places = people.get(e.user) ?? new Map<string, ICodeEvent[]>();
    people.set(e.user, places);
    const place =
      withProject && e.project ? `${e.project} · ${placeOf(e, trans)}` : placeOf(e, trans);
    places.set(place, [...(places.get(place) ?? []), e]);
  }
  return [...people].map(([user, places]) => ({
    user,
    places: [...places].map(([place, evs]) => ({ place, events: evs }))
  }));
}

/** The chain's banner: its text and whether it is intact. */
export function chainBanner(chain: IChain, trans: ITrans): { text: string; ok: boolean } {
  if (chain.ok) {
    return {
      ok: true,
      text: trans.__('Audit chain verified: every event up to #%1 is intact.', chain.verifiedTo)
    };
  }
  const at = chain.brokenSeq ?? chain.verifiedTo + 1;
  const why = chain.reason ? ` (${chain.reason})` : '';
  return {
    ok: false,
    text: trans.__('Audit chain broken at #%1: events from #%1 on cannot be trusted.', at) + why
  };
}

/** The kind of an event, as a person reads it. */
export function kindLabel(kind: CodeKind, trans: ITrans): string {
  switch (kind) {
    case 'cell':
      return trans.__('Cell');
    case 'terminal':
      return trans.__('Terminal line');
    case 'save':
      return trans.__('Saved file');
    case 'template':
      return trans.__('Template run');
  }
}
