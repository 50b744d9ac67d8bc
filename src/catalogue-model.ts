/**
 * The catalogue browser's data (`catalogue.ts`): what `/hdh/catalogue/search`,
 * `/hdh/catalogue/datasets/<name>` and `.../tables/<table>` answer, read defensively (pure
 * functions, no DOM, no network, unit-tested in `test/catalogue.test.mjs`), the search
 * query, the `hdh.read` cell, and the translator seam every user string goes through.
 */

import { Obj, arr, isObj, textOf } from './guards.js';

/** JupyterLab's `TranslationBundle.__` shape: `%1`, `%2`… are replaced by the arguments. */
export interface ITrans {
  __(msgid: string, ...args: (string | number)[]): string;
  _n(msgid: string, msgidPlural: string, n: number, ...args: (string | number)[]): string;
  _p(msgctxt: string, msgid: string, ...args: (string | number)[]): string;
}

const fill = (msgid: string, args: (string | number)[]) =>
  msgid.replace(/%(\d+)/g, (m, n) => String(args[Number(n) - 1] ?? m));

/** Without a translator (tests, a JupyterLab without @jupyterlab/translation): the English
 * text, arguments filled in. The plugins pass `translator.load('jupyterlab_hdh')`. */
export const englishTrans: ITrans = {
  __: (msgid, ...args) => fill(msgid, args),
  _n: (msgid, plural, n, ...args) => fill(n === 1 ? msgid : plural, args),
  _p: (_ctx, msgid, ...args) => fill(msgid, args)
};

/** The engines `hdh.read` offers in every sandbox (cuDF needs a GPU profile: not offered). */
export const ENGINES = ['pandas', 'duckdb', 'polars', 'arrow', 'spark'] as const;
export type Engine = (typeof ENGINES)[number];

export interface ICatalogueFilters {
  theme?: string;
  coding_system?: string;
  access_rights?: string;
  /** `yes` or `no` */
  synthetic?: string;
  /** years, four digits */
  from?: string;
  to?: string;
}

export interface IFacets {
  theme: string[];
  codingSystem: string[];
  accessRights: string[];
  synthetic: boolean[];
  years: [number, number] | null;
}

export interface ISearchHit {
  kind: string;
  dataset: string;
  version: string;
  title: string;
  table: string;
  variable: string;
  snippet: string;
}

export interface ISearchResult {
  query: string;
  hits: ISearchHit[];
  facets: IFacets;
}

export interface IColumn {
  name: string;
  type: string;
  description: string;
  nomenclature: string;
  primaryKey: boolean;
  foreignKey: string;
  required: boolean;
}

export interface ITable {
  name: string;
  title: string;
  description: string;
  rows: number | null;
  /** the dataset page's count (its answer has no columns), else the dictionary's */
  columnCount: number;
  columns: IColumn[];
}

export interface IVersion {
  version: string;
  status: string;
  createdAt: string;
}

export interface IQualityCheck {
  id: string;
  status: string;
  /** where, as the report names it: table · column */
  where: string;
  /** rows that fail the check and their share in percent (the widget words them) */
  violated: number | null;
  pct: number | null;
  /** the report's own words: message · detail */
  note: string;
}

/** An open application (an access request) for a dataset: its number and state. */
export interface IAccessRequest {
  id: number;
  /** `submitted` or `changes_requested` */
  state: string;
}

export interface IAccess {
  project: string;
  /** `mounted`, `permitted`, `not_permitted` or `unknown` */
  state: string;
  mounted: string[];
  permitted: string[];
  leads: string[];
  /** whether this member leads the project: only a lead requests access */
  youLead: boolean;
  /** the open access request for this dataset, if any */
  application: IAccessRequest | null;
  /** chosen for this sandbox, mounted once it restarts */
  restart: boolean;
  /** the server's sentence (English); the widget words the known states itself */
  how: string;
}

export interface IDatasetPage {
  name: string;
  version: string;
  title: string;
  description: string;
  publisher: string;
  population: string;
  temporalStart: string;
  temporalEnd: string;
  records: number | null;
  individuals: number | null;
  codingSystems: string[];
  themes: string[];
  keywords: string[];
  accessRights: string;
  legalBasis: string;
  synthetic: boolean;
  qualityPassed: number | null;
  qualityFailed: number | null;
  qualitySummary: string;
  qualityChecks: IQualityCheck[];
  qualityError: string;
  tables: ITable[];
  versions: IVersion[];
  access: IAccess;
  changeUrl: string;
}

function strs(v: unknown): string[] {
  return arr(v)
    .map(textOf)
    .filter(s => s);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** The query arguments of a search: the words (trimmed) and the filters that are set. */
export function searchQuery(q: string, filters: ICatalogueFilters): Record<string, string> {
  const out: Record<string, string> = {};
  if (q.trim()) {
    out.q = q.trim().slice(0, 200);
  }
  for (const [k, v] of Object.entries(filters)) {
    if (typeof v === 'string' && v.trim()) {
      out[k] = v.trim();
    }
  }
  return out;
}

export function parseSearch(body: unknown): ISearchResult {
  const b = isObj(body) ? body : {};
  const f = isObj(b.facets) ? b.facets : {};
  const years = arr(f.years).map(num);
  const hits: ISearchHit[] = [];
  for (const r of arr(b.results)) {
    if (!isObj(r) || !textOf(r.dataset)) {
      continue;
    }
    hits.push({
      kind: textOf(r.kind) || 'dataset',
      dataset: textOf(r.dataset),
      version: textOf(r.version),
      title: textOf(r.title),
      table: textOf(r.table),
      variable: textOf(r.variable),
      snippet: textOf(r.snippet)
    });
  }
  return {
    query: textOf(b.query),
    hits,
    facets: {
      theme: strs(f.theme),
      codingSystem: strs(f.coding_system),
      accessRights: strs(f.access_rights),
      synthetic: arr(f.synthetic).filter((x): x is boolean => typeof x === 'boolean'),
      years:
        years.length === 2 && years[0] !== null && years[1] !== null ? [years[0], years[1]] : null
    }
  };
}

export function parseTable(body: unknown): ITable {
  const t = isObj(body) ? body : {};
  const columns = arr(t.columns)
    .filter(isObj)
    .map(c => {
      const constraints = isObj(c.constraints) ? c.constraints : {};
      return {
        name: textOf(c.name),
        type: textOf(c.type) || 'string',
        description: textOf(c.description),
        nomenclature: textOf(c.nomenclature),
        primaryKey: c.primary_key === true,
        foreignKey: textOf(c.foreign_key),
        required: constraints.required === true
      };
    })
    .filter(c => c.name);
  return {
    name: textOf(t.name),
    title: textOf(t.title),
    description: textOf(t.description),
    rows: num(t.rows),
    columnCount: num(t.column_count) ?? columns.length,
    columns
  };
}

function parseAccess(v: unknown): IAccess {
  const a = isObj(v) ? v : {};
  return {
    project: textOf(a.project),
    state: textOf(a.state) || 'unknown',
    mounted: strs(a.mounted),
    permitted: strs(a.permitted),
    leads: arr(a.leads)
      .filter(isObj)
      .map(l => textOf(l.name))
      .filter(n => n),
    youLead: a.you_lead === true,
    application: parseAccessRequest(a.application),
    restart: a.restart === true,
    how: textOf(a.how)
  };
}

/** An application as `/hdh/catalogue/datasets/<name>` (its `access.application`) or the
 * access request's answer give it: `{id, state}`, or null when it is not one. */
export function parseAccessRequest(v: unknown): IAccessRequest | null {
  const a = isObj(v) ? v : {};
  const id = num(a.id);
  return id !== null && Number.isInteger(id) && id > 0
    ? { id, state: textOf(a.state) || 'submitted' }
    : null;
}

function joined(c: Obj, keys: string[]): string {
  return keys
    .map(k => textOf(c[k]))
    .filter(v => v)
    .join(' · ');
}

export function parseDatasetPage(body: unknown): IDatasetPage {
  const b = isObj(body) ? body : {};
  const d = isObj(b.dataset) ? b.dataset : {};
  const q = isObj(d.quality) ? d.quality : {};
  const report = isObj(b.quality) ? b.quality : {};
  const summary = isObj(report.summary) ? report.summary : {};
  const publisher = isObj(d.publisher) ? d.publisher : {};
  return {
    name: textOf(d.name),
    version: textOf(d.version),
    title: textOf(d.title) || textOf(d.name),
    description: textOf(d.description),
    publisher: textOf(publisher.name),
    population: textOf(d.population),
    temporalStart: textOf(d.temporal_start),
    temporalEnd: textOf(d.temporal_end),
    records: num(d.records),
    individuals: num(d.individuals),
    codingSystems: strs(d.coding_systems),
    themes: strs(d.theme),
    keywords: strs(d.keywords),
    accessRights: textOf(d.access_rights),
    legalBasis: textOf(d.legal_basis),
    synthetic: d.synthetic === true,
    qualityPassed: num(q.passed) ?? num(summary.passed),
    qualityFailed: num(q.failed) ?? num(summary.failed),
    qualitySummary: textOf(q.summary),
    qualityChecks: arr(report.checks)
      .filter(isObj)
      .map(c => ({
        id: textOf(c.check_id) || textOf(c.id) || textOf(c.name),
        status: textOf(c.status),
        where: joined(c, ['table', 'column']),
        violated: num(c.violated),
        pct: num(c.pct),
        note: joined(c, ['message', 'detail'])
      }))
      .filter(c => c.id),
    qualityError: textOf(b.quality_error),
    tables: arr(d.tables)
      .map(parseTable)
      .filter(t => t.name),
    versions: arr(d.versions)
      .filter(isObj)
      .map(v => ({
        version: textOf(v.version),
        status: textOf(v.status),
        createdAt: textOf(v.created_at).slice(0, 10)
      }))
      .filter(v => v.version),
    access: parseAccess(b.access),
    changeUrl: textOf(b.change_url)
  };
}

/** A Python string literal (JSON's escapes are Python's for these names). */
function pyStr(s: string): string {
  return JSON.stringify(s);
}

/**
 * The cell that reads a table: `import hdh` then
 * `df = hdh.read("<dataset>.<TABLE>", engine="<engine>", columns=[...])` (no `columns`
 * when none is chosen: every column).
 */
export function readCellSource(
  dataset: string,
  table: string,
  engine: Engine,
  columns: string[]
): string {
  const args = [pyStr(`${dataset}.${table}`), `engine=${pyStr(engine)}`];
  if (columns.length > 0) {
    args.push(`columns=[${columns.map(pyStr).join(', ')}]`);
  }
  const call = `df = hdh.read(${args.join(', ')})`;
  if (call.length <= 99) {
    return `import hdh\n\n${call}`;
  }
  const cols = columns.map(c => `        ${pyStr(c)},`).join('\n');
  const lines = [`    ${args[0]},`, `    ${args[1]},`];
  if (columns.length > 0) {
    lines.push(`    columns=[\n${cols}\n    ],`);
  }
  return `import hdh\n\ndf = hdh.read(\n${lines.join('\n')}\n)`;
}
