/**
 * The code audit view, a main-area widget ("HDH: Audited code"): the project's audited code
 * (`GET /hdh/audit/code`: executed cells, terminal lines, saved files, template runs) grouped
 * by person and notebook, newest first, each entry's code in a read-only monospace block,
 * the audit chain's state in a banner, filters (person, kind, notebook, dates) and "Load
 * more". Only the project's leads (and administrators) see it from a sandbox: anyone else
 * reads why (403). A reviewer opens it from a request under review ("Audited code of
 * project …"): it then reads the project's pages from the control plane (`IAuditSource`).
 *
 * Every user string goes through `trans.__`; text from the server goes in as text only
 * (`dom.ts`: `textContent`, never `innerHTML`).
 */

import { Widget } from '@lumino/widgets';

import { HdhApiError, requestAPI } from './api';
import { button, clear, h } from './dom';
import {
  CODE_KINDS,
  ICodeEvent,
  IAuditFilters,
  auditQuery,
  chainBanner,
  groupEvents,
  kindLabel,
  parseCodePage
} from './audit-model';
import { ITrans, englishTrans } from './catalogue-model';
import { errorText, formatDateTime } from './format';

export const AUDIT_CODE = 'hdh:audit-code';
export const AUDIT_EVERY_PROJECT = 'hdh:audit-every-project';
export const AUDIT_WIDGET_ID = 'jp-hdh-audit';

/**
 * Where the pages come from when not from this sandbox's `/hdh/audit/code`: the control
 * plane, for a reviewer looking at the code behind a request (`review.ts`): `ReviewClient`'s
 * `auditCode` or `auditAll`, whose refusals are `HdhApiError`s worded like the sandbox's.
 */
export interface IAuditSource {
  /** the project read; empty: every project (administrators), with a project filter */
  project: string;
  page(query: Record<string, string>): Promise<unknown>;
}

export class AuditView extends Widget {
  constructor(private readonly trans: ITrans = englishTrans) {
    super();
    const __ = trans.__.bind(trans);
    this.id = AUDIT_WIDGET_ID;
    this.addClass('jp-hdh-audit');
    this.title.label = __('HDH Audited code');
    this.title.caption = __("The project's audited code: cells, terminal lines, saved files");
    this.title.closable = true;

    this._project = this.input('text', __('Project'));
    this._user = this.input('text', __('Person'));
    this._notebook = this.input('text', __('Notebook or file'));
    this._since = this.input('date', __('From'));
    this._until = this.input('date', __('To'));
    this._kind = h('select', { class: 'jp-hdh-audit-kind', 'aria-label': __('Kind') });
    this._kind.append(h('option', { value: '' }, __('All kinds')));
    for (const k of CODE_KINDS) {
      this._kind.append(h('option', { value: k }, kindLabel(k, trans)));
    }
    this._apply = h(
      'button',
      { type: 'submit', class: 'jp-hdh-button jp-hdh-audit-apply' },
      __('Show')
    );
    const form = h(
      'form',
      { class: 'jp-hdh-audit-filters', role: 'search', 'aria-label': __('Filters') },
      (this._projectField = this.labelled(__('Project'), this._project)),
      this.labelled(__('Person'), this._user),
      this.labelled(__('Kind'), this._kind),
      this.labelled(__('Notebook or file'), this._notebook),
      this.labelled(__('From'), this._since),
      this.labelled(__('To'), this._until),
      this._apply
    );
    this._projectField.hidden = true; // only in the administrators' view of every project
    form.addEventListener('submit', e => {
      e.preventDefault();
      void this.load();
    });
    this._kind.addEventListener('change', () => void this.load());
    this._heading = h('h2', { class: 'jp-hdh-audit-heading' }, __('Audited code'));
    this._banner = h('div', { class: 'jp-hdh-audit-chain', role: 'status' });
    this._status = h('div', { class: 'jp-hdh-audit-status', 'aria-live': 'polite' });
    this._list = h('div', { class: 'jp-hdh-audit-list' });
    this._more = button(__('Load more'), () => void this.load(true), {
      class: 'jp-hdh-button jp-hdh-audit-more'
    });
    this._more.hidden = true;
    this.node.append(
      h('div', { class: 'jp-hdh-audit-top' }, this._heading, form, this._banner),
      this._status,
      this._list,
      this._more
    );
  }

  /** Reads from `source` from now on (null: this sandbox's project, through `/hdh`). */
  useSource(source: IAuditSource | null): void {
    const __ = this.trans.__.bind(this.trans);
    this._source = source;
    this._heading.textContent = !source
      ? __('Audited code')
      : source.project
        ? __('Audited code of project %1', source.project)
        : __('Audited code of every project');
    this._projectField.hidden = !this.everyProject;
  }

  /** The administrators' view of every project (a project filter, projects named). */
  get everyProject(): boolean {
    return this._source !== null && !this._source.project;
  }

  /** The filters as set in the form. */
  filters(): IAuditFilters {
    return {
      project: this.everyProject ? this._project.value : '',
      user: this._user.value,
      kind: this._kind.value,
      notebook: this._notebook.value,
      since: this._since.value,
      until: this._until.value
    };
  }

  /**
   * Loads the first page for the filters (or, `more`, the next page). Meanwhile the status
   * says so with a spinner, "Show" and "Load more" are disabled (one page at a time); a
   * failure says why and enables them again.
   */
  async load(more = false): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    if (more && this._loading) {
      return; // that page is on its way already
    }
    const seq = ++this._seq;
    if (!more) {
      this._events = [];
      this._cursor = null;
      this._more.hidden = true;
    }
    this.busy(true, more);
    this.setStatus(
      more ? __('Loading more audited code…') : __('Loading the audited code…'),
      'jp-hdh-muted jp-hdh-audit-loading'
    );
    let body: unknown;
    try {
      const query = auditQuery(this.filters(), this._cursor);
      body = this._source
        ? await this._source.page(query)
        : await requestAPI('audit/code', {}, query);
    } catch (error) {
      if (seq === this._seq) {
        this.busy(false, more);
        this.showError(error, more);
      }
      return;
    }
    if (seq !== this._seq) {
      return; // the filters changed meanwhile: this answer is stale
    }
    this.busy(false, more);
    const page = parseCodePage(body);
    this._events = [...this._events, ...page.events];
    this._cursor = page.nextCursor;
    if (page.project && !this.everyProject) {
      this._heading.textContent = __('Audited code of project %1', page.project);
    }
    const banner = chainBanner(page.chain, this.trans);
    this._banner.textContent = banner.text;
    this._banner.className =
      'jp-hdh-audit-chain ' + (banner.ok ? 'jp-hdh-audit-verified' : 'jp-hdh-audit-broken');
    const n = this._events.length;
    this.setStatus(
      n === 0
        ? __('No audited code matches these filters.')
        : n === 1
          ? __('1 event, newest first.')
          : __('%1 events, newest first.', n),
      'jp-hdh-muted'
    );
    this.render();
    this._more.hidden = page.nextCursor === null;
  }

  private render(): void {
    const __ = this.trans.__.bind(this.trans);
    clear(this._list);
    for (const person of groupEvents(this._events, this.trans, this.everyProject)) {
      const section = h('section', { class: 'jp-hdh-audit-person' }, h('h3', {}, person.user));
      for (const place of person.places) {
        const entries = h('ol', { class: 'jp-hdh-audit-entries' });
        for (const e of place.events) {
          entries.append(this.entry(e));
        }
        section.append(
          h(
            'div',
            { class: 'jp-hdh-audit-place' },
            h(
              'h4',
              {},
              place.place,
              h(
                'span',
                { class: 'jp-hdh-muted' },
                ` · ${place.events.length === 1 ? __('1 event') : __('%1 events', place.events.length)}`
              )
            ),
            entries
          )
        );
      }
      this._list.append(section);
    }
  }

  private entry(e: ICodeEvent): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const when = e.ts ? formatDateTime(e.ts, this.trans) : '';
    const mark = e.verified
      ? h('span', { class: 'jp-hdh-audit-ok' }, __('verified'))
      : h('span', { class: 'jp-hdh-audit-bad' }, __('not verified'));
    return h(
      'li',
      { class: 'jp-hdh-audit-entry', 'data-seq': String(e.seq), 'data-kind': e.kind },
      h(
        'div',
        { class: 'jp-hdh-audit-meta' },
        h('span', { class: 'jp-hdh-audit-kindlabel' }, kindLabel(e.kind, this.trans)),
        h('time', { datetime: e.ts }, when),
        h('span', { class: 'jp-hdh-muted' }, `#${e.seq}`),
        mark
      ),
      h('pre', { class: 'jp-hdh-audit-code', 'aria-readonly': 'true' }, e.code)
    );
  }

  /** Disables "Show" and "Load more" while a page loads (the latter saying so). */
  private busy(on: boolean, more: boolean): void {
    this._loading = on;
    this._apply.disabled = on;
    this._more.disabled = on;
    this._list.setAttribute('aria-busy', String(on));
    this._more.textContent =
      on && more ? this.trans.__('Loading more…') : this.trans.__('Load more');
  }

  private showError(error: unknown, more = false): void {
    const __ = this.trans.__.bind(this.trans);
    if (more) {
      // the pages already shown stay; "Load more" can be tried again
      this.setStatus(
        __('The next page could not be loaded: %1', errorText(error, this.trans)),
        'jp-hdh-error'
      );
      this._more.hidden = false;
      return;
    }
    clear(this._list);
    this._banner.textContent = '';
    this._banner.className = 'jp-hdh-audit-chain';
    if (
      error instanceof HdhApiError &&
      error.status === 403 &&
      !/^not authenticated\b/i.test(error.reason)
    ) {
      this.setStatus(
        __('Only the project lead, its reviewers and administrators can see the audited code.'),
        'jp-hdh-error jp-hdh-audit-refused'
      );
      return;
    }
    this.setStatus(
      __('The audited code could not be loaded: %1', errorText(error, this.trans)),
      'jp-hdh-error'
    );
  }

  private setStatus(text: string, cls: string): void {
    clear(this._status);
    if (cls.includes('jp-hdh-audit-loading')) {
      this._status.append(h('span', { class: 'jp-hdh-spinner' }));
    }
    this._status.append(text);
    this._status.className = `jp-hdh-audit-status ${cls}`;
    this._status.setAttribute('role', cls.includes('jp-hdh-error') ? 'alert' : 'status');
  }

  private input(type: string, label: string): HTMLInputElement {
    return h('input', { type, class: 'jp-hdh-audit-input', 'aria-label': label });
  }

  private labelled(label: string, control: HTMLElement): HTMLElement {
    return h('label', { class: 'jp-hdh-audit-field' }, h('span', {}, label), control);
  }

  private readonly _user: HTMLInputElement;
  private readonly _notebook: HTMLInputElement;
  private readonly _since: HTMLInputElement;
  private readonly _until: HTMLInputElement;
  private readonly _kind: HTMLSelectElement;
  private readonly _heading: HTMLElement;
  private readonly _banner: HTMLElement;
  private readonly _status: HTMLElement;
  private readonly _list: HTMLElement;
  private readonly _more: HTMLButtonElement;
  private readonly _apply: HTMLButtonElement;
  private _loading = false;
  private _source: IAuditSource | null = null;
  private readonly _project: HTMLInputElement;
  private readonly _projectField: HTMLElement;
  private _events: ICodeEvent[] = [];
  private _cursor: number | null = null;
  private _seq = 0;
}
