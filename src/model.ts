/**
 * What the /hdh/* routes answer, read defensively: pure functions, no DOM, no network.
 *
 * The server side changes independently of this bundle (older sandboxes, routes not yet
 * deployed, control-plane views that grow fields), so every reader here accepts `unknown`
 * and returns a complete, typed value with absent or malformed fields left out.
 */

import { ITrans } from './catalogue-model'; // a type only: node's tests load lib/model.js alone
import { arr, isObj, textOf } from './guards.js';

export interface IMount {
  dataset: string;
  version: string;
  path: string;
  tables: string[];
}

export interface IPermitted {
  dataset: string;
  version: string;
  mounted: boolean;
}

export interface IMyData {
  project: string | null;
  user: string | null;
  mounts: IMount[];
  permitted: IPermitted[] | null;
  /** Why the permitted versions could not be read (control plane unreachable), if so. */
  permittedError: string | null;
  changeUrl: string | null;
}

export interface ICatalogueHit {
  dataset: string;
  version: string;
  table: string;
  variable: string;
  description: string;
}

export interface IFlag {
  rule: string;
  message: string;
  location: string;
  severity: string;
}

export interface IRequestFile {
  path: string;
  role: string;
  sha256: string;
  checkStatus: string | null;
  checkSummary: string;
  checkError: string;
  flags: IFlag[];
}

export interface IComment {
  author: string;
  body: string;
}

export interface IExportRequest {
  id: string;
  title: string;
  state: string;
  /** How many files it holds (a list view gives only this number). */
  fileCount: number;
  /** The files, when the view lists them (`null`: a summary, fetch the request). */
  files: IRequestFile[] | null;
  comments: IComment[];
  /** Names of the released files (downloaded from the HDH portal, never from the sandbox). */
  released: string[];
  /** The request's page on the HDH portal, when the server gives one (same origin only). */
  uiUrl: string | null;
}

export const FILE_ROLES = ['output', 'supporting', 'code'] as const;
export type FileRole = (typeof FILE_ROLES)[number];

/**
 * A same-origin absolute path, or null: the only kind of URL the panel navigates to.
 * Refuses `javascript:`, `data:`, absolute and protocol-relative URLs (`//evil`), and
 * backslash tricks that browsers normalise into `//`.
 */
export function safeSameOriginPath(v: unknown): string | null {
  if (typeof v !== 'string' || v.length === 0 || v.length > 2000) {
    return null;
  }
  if (!v.startsWith('/') || v.startsWith('//') || v.includes('\\')) {
    return null;
  }
  // control characters (tab, newline) are stripped by URL parsers: refuse them
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) < 0x20 || v.charCodeAt(i) === 0x7f) {
      return null;
    }
  }
  return v;
}

/** `GET /hdh/mounts`: the new shape, or the older `{mounts: [...]}` one. */
export function parseMyData(body: unknown): IMyData {
  const b = isObj(body) ? body : {};
  const mounts: IMount[] = [];
  for (const m of arr(b.mounts)) {
    if (!isObj(m) || !textOf(m.dataset) || !textOf(m.version)) {
      continue;
    }
    mounts.push({
      dataset: textOf(m.dataset),
      version: textOf(m.version),
      path: textOf(m.path) || `/data/${textOf(m.dataset)}/${textOf(m.version)}`,
      tables: arr(m.tables)
        .map(t => (isObj(t) ? textOf(t.table) : textOf(t)))
        .filter(t => t !== '')
    });
  }
  let permitted: IPermitted[] | null = null;
  if (Array.isArray(b.permitted)) {
    permitted = [];
    for (const p of b.permitted) {
      if (!isObj(p) || !textOf(p.dataset) || !textOf(p.version)) {
        continue;
      }
      const mounted =
        p.mounted === true ||
        mounts.some(m => m.dataset === textOf(p.dataset) && m.version === textOf(p.version));
      permitted.push({ dataset: textOf(p.dataset), version: textOf(p.version), mounted });
    }
  }
  return {
    project: textOf(b.project) || null,
    user: textOf(b.user) || null,
    mounts,
    permitted,
    permittedError: textOf(b.permitted_error) || null,
    changeUrl: safeSameOriginPath(b.change_url)
  };
}

/**
 * A snippet that reads the first table of a mount (or lists the folder) with pyarrow, a
 * dependency of HDH itself; the path is a JSON string literal, which is valid Python.
 */
export function readSnippet(mount: IMount): string {
  const quoted = JSON.stringify(mount.path);
  if (mount.tables.length > 0) {
    const file = JSON.stringify(`${mount.path}/${mount.tables[0]}.parquet`);
    return (
      'import pyarrow.parquet as pq\n' +
      `table = pq.read_table(${file})  # table.to_pandas() for a DataFrame`
    );
  }
  return `import os\nos.listdir(${quoted})`;
}

/**
 * `GET /hdh/catalogue[?q=]`: the control plane's search results or dataset list.
 * Accepts `{results: [...]}`, `{hits: [...]}`, `{datasets: [...]}` or a bare list; a hit
 * names its dataset as `dataset`, `dataset_id`, `name` or `id` (search hits carry
 * `dataset, version, table, variable, snippet`; dataset records `name, version, title,
 * description`).
 */
export function parseCatalogue(body: unknown): ICatalogueHit[] {
  let rows: unknown[] = [];
  if (Array.isArray(body)) {
    rows = body;
  } else if (isObj(body)) {
    rows = arr(body.results ?? body.hits ?? body.datasets ?? body.items);
  }
  const hits: ICatalogueHit[] = [];
  for (const r of rows) {
    if (!isObj(r)) {
      continue;
    }
    const hit = {
      dataset: textOf(r.dataset ?? r.dataset_id ?? r.name ?? r.id),
      version: textOf(r.version),
      table: textOf(r.table ?? r.table_name),
      variable: textOf(r.variable ?? r.column ?? r.variable_name),
      description: textOf(r.description ?? r.snippet ?? r.label ?? r.title)
    };
    if (hit.dataset || hit.table || hit.variable) {
      hits.push(hit);
    }
  }
  return hits;
}

function flagLocation(v: unknown): string {
  if (isObj(v)) {
    return Object.entries(v)
      .map(([k, x]) => `${k}=${typeof x === 'string' ? x : JSON.stringify(x)}`)
      .join(', ');
  }
  return textOf(v);
}

/**
 * One file of a request: the control plane's `check_status` / `check_report` (`{status,
 * summary, flags, error}`), or a `check: {status, flags}` object.
 */
function parseFile(f: unknown): IRequestFile | null {
  if (!isObj(f) || !textOf(f.path)) {
    return null;
  }
  const report = isObj(f.check) ? f.check : isObj(f.check_report) ? f.check_report : null;
  const flags: IFlag[] = [];
  for (const fl of arr(report?.flags)) {
    if (isObj(fl)) {
      flags.push({
        rule: textOf(fl.rule),
        message: textOf(fl.message),
        location: flagLocation(fl.location),
        severity: textOf(fl.severity)
      });
    }
  }
  return {
    path: textOf(f.path),
    role: textOf(f.role),
    sha256: textOf(f.sha256),
    checkStatus: textOf(f.check_status) || textOf(report?.status) || null,
    checkSummary: textOf(report?.summary),
    checkError: textOf(report?.error),
    flags
  };
}

export function parseRequest(r: unknown): IExportRequest | null {
  if (!isObj(r) || !textOf(r.id)) {
    return null;
  }
  const files = Array.isArray(r.files)
    ? r.files.map(parseFile).filter((f): f is IRequestFile => f !== null)
    : null;
  const count = typeof r.files === 'number' && r.files >= 0 ? Math.floor(r.files) : 0;
  const comments: IComment[] = [];
  for (const c of arr(r.comments)) {
    if (isObj(c) && textOf(c.body)) {
      comments.push({ author: textOf(c.author), body: textOf(c.body) });
    }
  }
  return {
    id: textOf(r.id),
    title: textOf(r.title),
    state: textOf(r.state) || 'unknown',
    fileCount: files !== null ? files.length : count,
    files,
    comments,
    released: arr(r.released)
      // the readable download name (`filename`); older servers gave only `<sha256>-name`
      .map(x => (isObj(x) ? textOf(x.filename) || textOf(x.name) : textOf(x)))
      .filter(x => x),
    uiUrl: safeSameOriginPath(r.ui_url)
  };
}

/** `GET /hdh/egress/requests`: `{results: [...]}` or a bare list. */
export function parseRequests(body: unknown): IExportRequest[] {
  const rows = Array.isArray(body) ? body : isObj(body) ? arr(body.results) : [];
  return rows.map(parseRequest).filter((r): r is IExportRequest => r !== null);
}

/** What a reviewer needs to know about an output (the control plane validates it). */
export interface IFileContext {
  population?: string;
  variables?: string[];
  degrees_of_freedom?: number;
  description?: string;
}

/** A context from the form's fields; throws on a degrees of freedom that is not a count. */
export function contextFrom(fields: {
  population: string;
  variables: string;
  dof: string;
  description: string;
}): IFileContext {
  const out: IFileContext = {};
  if (fields.population.trim()) {
    out.population = fields.population.trim();
  }
  const variables = fields.variables
    .split(',')
    .map(v => v.trim())
    .filter(v => v);
  if (variables.length > 0) {
    out.variables = variables;
  }
  if (fields.dof.trim()) {
    if (!/^\d{1,9}$/.test(fields.dof.trim())) {
      throw new Error('Degrees of freedom must be a whole number (0 or more).');
    }
    out.degrees_of_freedom = Number(fields.dof.trim());
  }
  if (fields.description.trim()) {
    out.description = fields.description.trim();
  }
  return out;
}

/** A template study (`GET /hdh/templates`): what its launcher card shows. */
export interface ITemplateParameter {
  name: string;
  type: string;
  /** As written in the notebook's parameters cell, e.g. `"demo-snds"` or `90`. */
  default: string;
  help: string;
}

export interface ITemplate {
  name: string;
  title: string;
  description: string;
  parameters: ITemplateParameter[];
}

/** A safe template name: it goes into a URL path and a workspace file name. */
const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

export function parseTemplates(body: unknown): ITemplate[] {
  const out: ITemplate[] = [];
  for (const t of arr(isObj(body) ? body.results : body)) {
    if (!isObj(t) || !TEMPLATE_NAME.test(textOf(t.name))) {
      continue;
    }
    const parameters: ITemplateParameter[] = [];
    for (const p of arr(t.parameters)) {
      if (isObj(p) && textOf(p.name)) {
        parameters.push({
          name: textOf(p.name),
          type: textOf(p.type),
          default: textOf(p.default),
          help: textOf(p.help)
        });
      }
    }
    const name = textOf(t.name);
    out.push({
      name,
      title: textOf(t.title) || name,
      description: textOf(t.description),
      parameters
    });
  }
  return out;
}

/** The card's tooltip: the description, then one line per parameter. */
export function templateCaption(t: ITemplate, trans?: ITrans): string {
  const lines = t.description ? [t.description] : [];
  if (t.parameters.length > 0) {
    const heading = 'Parameters (change them in the notebook, then run all):';
    lines.push(
      '',
      trans ? trans.__('Parameters (change them in the notebook, then run all):') : heading
    );
    for (const p of t.parameters) {
      const type = p.type && p.type !== 'None' ? `: ${p.type}` : '';
      const help = p.help ? ` (${p.help})` : '';
      lines.push(`• ${p.name}${type} = ${p.default}${help}`);
    }
  }
  return lines.join('\n');
}
