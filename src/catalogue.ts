/**
 * The catalogue browser, a main-area widget ("HDH: Browse the catalogue"): search as you type
 * with filters (`GET /hdh/catalogue/search`), a dataset's page with its description,
 * coverage, counts, quality report, versions, tables and the member's access in this project
 * (`GET /hdh/catalogue/datasets/<name>`) where the project's lead requests access to a
 * dataset the permit does not cover (`POST .../request-access`: an amendment application),
 * a table's data dictionary
 * (`.../versions/<v>/tables/<table>`), and from a table an `hdh.read(...)` cell inserted
 * into the last active notebook, below its active cell.
 *
 * Every user string goes through `trans.__` (`catalogue-model.ts`: English until the
 * extension loads a translation domain); text from the server goes in as text only (`dom.ts`).
 */

import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { hdhPath, postJSON, requestAPI } from './api';
import { Child, button, clear, h } from './dom';
import {
  ENGINES,
  Engine,
  IAccess,
  ICatalogueFilters,
  IDatasetPage,
  IFacets,
  IQualityCheck,
  ISearchHit,
  ITable,
  ITrans,
  englishTrans,
  parseAccessRequest,
  parseDatasetPage,
  parseSearch,
  parseTable,
  readCellSource,
  searchQuery
} from './catalogue-model';
import { errorText, formatDate, formatNumber, formatPercent, whileBusy } from './format';

export const BROWSE_CATALOGUE = 'hdh:browse-catalogue';
export const CATALOGUE_WIDGET_ID = 'jp-hdh-catalogue';
/** Milliseconds of quiet typing before a search is sent. */
export const SEARCH_DEBOUNCE_MS = 250;

/** What the browser needs of a notebook panel (no dependency on @jupyterlab/notebook). */
export interface INotebookLike extends Widget {
  content: {
    activeCellIndex: number;
    model: {
      sharedModel: {
        insertCell(
          index: number,
          cell: { cell_type: 'code'; source: string; metadata: object }
        ): unknown;
      };
    } | null;
  };
  context: { path: string };
}

/** Whether a widget is a notebook panel (its class, and the members the insert uses). */
export function isNotebook(w: Widget | null | undefined): w is INotebookLike {
  const c = w as Partial<INotebookLike> | null | undefined;
  return (
    !!w &&
    !w.isDisposed &&
    w.hasClass('jp-NotebookPanel') &&
    !!c?.content &&
    typeof c.content.activeCellIndex === 'number' &&
    !!c.context
  );
}

/**
 * Inserts `source` as a code cell below the notebook's active cell and makes it active;
 * answers the new cell's index.
 */
export function insertCellBelow(nb: INotebookLike, source: string): number {
  const model = nb.content.model;
  if (!model) {
    throw new Error('the notebook is not loaded yet');
  }
  const index = Math.max(0, nb.content.activeCellIndex + 1);
  model.sharedModel.insertCell(index, { cell_type: 'code', source, metadata: {} });
  nb.content.activeCellIndex = index;
  return index;
}

type View =
  { kind: 'empty' } | { kind: 'dataset'; name: string } | { kind: 'table'; table: ITable };

export class CatalogueBrowser extends Widget {
  constructor(
    private readonly notebook: () => INotebookLike | null,
    private readonly reveal: (w: Widget) => void,
    private readonly trans: ITrans = englishTrans
  ) {
    super();
    const __ = trans.__.bind(trans);
    this.id = CATALOGUE_WIDGET_ID;
    this.addClass('jp-hdh-catalogue');
    this.title.label = __('HDH Catalogue');
    this.title.caption = __('Search the catalogue: datasets, tables, variables');
    this.title.closable = true;

    this._input = h('input', {
      type: 'search',
      class: 'jp-hdh-search jp-hdh-cat-query',
      placeholder: __('Search datasets, tables, variables'),
      'aria-label': __('Search the catalogue')
    });
    this._input.addEventListener('input', () => this.scheduleSearch());
    this._theme = this.select('theme', __('Theme'));
    this._coding = this.select('coding_system', __('Coding system'));
    this._rights = this.select('access_rights', __('Access rights'));
    this._synthetic = this.select('synthetic', __('Synthetic'));
    this._from = this.year('from', __('From year'));
    this._to = this.year('to', __('To year'));
    const filters = h(
      'div',
      { class: 'jp-hdh-cat-filters', role: 'group', 'aria-label': __('Filters') },
      this.labelled(__('Theme'), this._theme),
      this.labelled(__('Coding system'), this._coding),
      this.labelled(__('Access rights'), this._rights),
      this.labelled(__('Synthetic'), this._synthetic),
      this.labelled(__('Coverage from'), this._from),
      this.labelled(__('to'), this._to)
    );
    this._status = h('div', { class: 'jp-hdh-cat-status', role: 'status', 'aria-live': 'polite' });
    this._results = h('ul', {
      class: 'jp-hdh-list jp-hdh-cat-results',
      'aria-label': __('Results')
    });
    this._detail = h('div', { class: 'jp-hdh-cat-detail' });
    this.node.append(
      h(
        'div',
        { class: 'jp-hdh-cat-side' },
        h('div', { class: 'jp-hdh-cat-searchbar' }, this._input),
        filters,
        this._status,
        this._results
      ),
      this._detail
    );
    this.renderEmptyDetail();
  }

  /** Runs the current search now (also what typing does, debounced). */
  async search(): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    window.clearTimeout(this._timer);
    const seq = ++this._seq;
    const query = searchQuery(this._input.value, this.filters());
    this.setStatus(__('Searching…'), 'jp-hdh-muted jp-hdh-cat-loading');
    this._results.setAttribute('aria-busy', 'true');
    let body: unknown;
    try {
      body = await requestAPI('catalogue/search', {}, query);
    } catch (error) {
      if (seq === this._seq) {
        this._results.removeAttribute('aria-busy');
        clear(this._results);
        this.setStatus(this.describe(error, __('The search failed.')), 'jp-hdh-error');
      }
      return;
    }
    if (seq !== this._seq) {
      return; // a newer search was sent: this answer is stale
    }
    this._results.removeAttribute('aria-busy');
    const result = parseSearch(body);
    this.fillFacets(result.facets);
    this.renderHits(result.hits, query.q ?? '');
  }

  /** Opens a dataset's page. */
  async openDataset(name: string, thenTable?: string): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const seq = ++this._detailSeq;
    this._view = { kind: 'dataset', name };
    this.loading(__('Loading %1…', name));
    let body: unknown;
    try {
      body = await requestAPI(hdhPath('catalogue', 'datasets', name));
    } catch (error) {
      if (seq === this._detailSeq) {
        this.detailError(this.describe(error, __('The dataset %1 could not be loaded.', name)));
      }
      return;
    }
    if (seq !== this._detailSeq) {
      return;
    }
    this._page = parseDatasetPage(body);
    this.renderDataset(this._page);
    if (thenTable && this._page.tables.some(t => t.name === thenTable)) {
      await this.openTable(thenTable);
    }
  }

  /** Opens a table's data dictionary (of the dataset page shown). */
  async openTable(table: string): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const page = this._page;
    if (!page) {
      return;
    }
    const seq = ++this._detailSeq;
    this.loading(__('Loading the data dictionary of %1…', table));
    let body: unknown;
    try {
      body = await requestAPI(
        hdhPath('catalogue', 'datasets', page.name, 'versions', page.version, 'tables', table)
      );
    } catch (error) {
      if (seq === this._detailSeq) {
        this.detailError(
          this.describe(error, __('The data dictionary of %1 could not be loaded.', table))
        );
      }
      return;
    }
    if (seq !== this._detailSeq) {
      return;
    }
    const parsed = parseTable(body);
    this._view = { kind: 'table', table: parsed };
    this.renderTable(page, parsed);
  }

  /** Enables or disables the insert button for the notebook now active (or none). */
  updateInsertState(): void {
    const __ = this.trans.__.bind(this.trans);
    if (!this._insert || !this._insertWhy) {
      return;
    }
    const nb = this.notebook();
    this._insert.disabled = nb === null;
    this._insertWhy.textContent = nb
      ? __('Into %1, below its active cell.', nb.context.path)
      : __('Open a notebook first: the cell goes into the last notebook you used.');
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (!this._searched) {
      this._searched = true;
      void this.search();
    }
  }

  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    this.updateInsertState();
    if (this.isAttached) {
      this._input.focus();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.updateInsertState();
  }

  // -- search side ------------------------------------------------------------------------

  private scheduleSearch(): void {
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this.search(), SEARCH_DEBOUNCE_MS);
  }

  private select(name: string, label: string): HTMLSelectElement {
    const s = h('select', { class: 'jp-hdh-cat-filter', 'data-filter': name, 'aria-label': label });
    s.append(h('option', { value: '' }, this.trans.__('Any')));
    s.addEventListener('change', () => void this.search());
    return s;
  }

  private year(name: string, label: string): HTMLInputElement {
    const i = h('input', {
      type: 'number',
      class: 'jp-hdh-cat-filter jp-hdh-cat-year',
      'data-filter': name,
      min: '1900',
      max: '2100',
      step: '1',
      placeholder: this.trans.__('year'),
      'aria-label': label
    });
    i.addEventListener('input', () => {
      if (i.value === '' || /^\d{4}$/.test(i.value)) {
        this.scheduleSearch();
      }
    });
    return i;
  }

  private labelled(text: string, control: HTMLElement): HTMLElement {
    return h('label', { class: 'jp-hdh-cat-field' }, h('span', {}, text), control);
  }

  private filters(): ICatalogueFilters {
    const year = (i: HTMLInputElement) => (/^\d{4}$/.test(i.value) ? i.value : '');
    return {
      theme: this._theme.value,
      coding_system: this._coding.value,
      access_rights: this._rights.value,
      synthetic: this._synthetic.value,
      from: year(this._from),
      to: year(this._to)
    };
  }

  /** The filters' options, from the whole catalogue (the chosen value is kept). */
  private fillFacets(f: IFacets): void {
    const __ = this.trans.__.bind(this.trans);
    const fill = (s: HTMLSelectElement, values: [string, string][]) => {
      const chosen = s.value;
      const key = JSON.stringify(values);
      if (s.dataset.options === key) {
        return;
      }
      s.dataset.options = key;
      clear(s);
      s.append(h('option', { value: '' }, __('Any')));
      for (const [value, text] of values) {
        s.append(h('option', { value }, text));
      }
      s.value = values.some(([v]) => v === chosen) ? chosen : '';
    };
    fill(
      this._theme,
      f.theme.map(t => [t, `${this.themeLabel(t)} (${t})`])
    );
    fill(
      this._coding,
      f.codingSystem.map(c => [c, c])
    );
    fill(
      this._rights,
      f.accessRights.map(r => [r, this.rightsLabel(r)])
    );
    fill(this._synthetic, [
      ['yes', __('Synthetic only')],
      ['no', __('Real data only')]
    ]);
    if (f.years) {
      for (const i of [this._from, this._to]) {
        i.min = String(f.years[0]);
        i.max = String(f.years[1]);
      }
      this._from.placeholder = String(f.years[0]);
      this._to.placeholder = String(f.years[1]);
    }
  }

  private renderHits(hits: ISearchHit[], q: string): void {
    const __ = this.trans.__.bind(this.trans);
    clear(this._results);
    if (hits.length === 0) {
      this.setStatus(
        q
          ? __('Nothing matches “%1” with these filters.', q)
          : __('No dataset matches these filters.'),
        'jp-hdh-muted'
      );
      return;
    }
    this.setStatus(
      hits.length === 1 ? __('1 result') : __('%1 results', hits.length),
      'jp-hdh-muted'
    );
    for (const hit of hits) {
      const where = [hit.table, hit.variable].filter(x => x).join(' › ');
      const open = () => {
        for (const other of Array.from(this._results.children)) {
          other.classList.remove('jp-mod-selected');
        }
        item.classList.add('jp-mod-selected');
        void this.openDataset(hit.dataset, hit.table || undefined);
      };
      const item = h(
        'li',
        {
          class: 'jp-hdh-hit jp-hdh-cat-hit',
          tabindex: '0',
          role: 'button',
          'data-dataset': hit.dataset,
          'data-table': hit.table,
          'data-variable': hit.variable
        },
        h(
          'div',
          { class: 'jp-hdh-name' },
          h('span', { class: 'jp-hdh-cat-kind' }, this.kindLabel(hit.kind)),
          ' ',
          where || hit.title || hit.dataset
        ),
        h('div', { class: 'jp-hdh-muted' }, `${hit.dataset} ${hit.version}`),
        hit.snippet &&
          hit.snippet !== hit.title &&
          h('div', { class: 'jp-hdh-cat-snippet' }, hit.snippet)
      );
      item.addEventListener('click', open);
      item.addEventListener('keydown', e => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          open();
        }
      });
      this._results.append(item);
    }
  }

  // -- detail side ------------------------------------------------------------------------

  private renderEmptyDetail(): void {
    const __ = this.trans.__.bind(this.trans);
    clear(this._detail);
    this._detail.append(
      h(
        'p',
        { class: 'jp-hdh-muted jp-hdh-cat-hint' },
        __('Choose a dataset, table or variable on the left to see its page.')
      )
    );
  }

  private loading(text: string): void {
    clear(this._detail);
    this._detail.setAttribute('aria-busy', 'true');
    this._detail.append(
      h(
        'div',
        { class: 'jp-hdh-cat-loading', role: 'status' },
        h('span', { class: 'jp-hdh-spinner' }),
        text
      )
    );
  }

  private detailError(text: string): void {
    clear(this._detail);
    this._detail.removeAttribute('aria-busy');
    this._detail.append(h('p', { class: 'jp-hdh-error', role: 'alert' }, text));
  }

  private renderDataset(p: IDatasetPage): void {
    const __ = this.trans.__.bind(this.trans);
    clear(this._detail);
    this._detail.removeAttribute('aria-busy');
    const coverage =
      p.temporalStart || p.temporalEnd
        ? `${p.temporalStart || '…'} → ${p.temporalEnd || '…'}`
        : __('not stated');
    const facts: [string, Child][] = [
      [__('Coverage'), coverage],
      [__('Population'), p.population || null],
      [__('Records'), formatNumber(p.records, this.trans)],
      [__('Individuals'), formatNumber(p.individuals, this.trans)],
      [__('Coding systems'), p.codingSystems.join(', ') || null],
      [__('Themes'), p.themes.map(t => this.themeLabel(t)).join(', ') || null],
      [__('Access rights'), this.rightsLabel(p.accessRights)],
      [__('Publisher'), p.publisher || null],
      [__('Legal basis'), p.legalBasis || null],
      [__('Keywords'), p.keywords.join(', ') || null]
    ];
    const dl = h('dl', { class: 'jp-hdh-cat-facts' });
    for (const [k, v] of facts) {
      if (v) {
        dl.append(h('dt', {}, k), h('dd', {}, v));
      }
    }
    this._detail.append(
      h(
        'div',
        { class: 'jp-hdh-cat-pageHead' },
        h('h2', { class: 'jp-hdh-cat-title' }, p.title),
        h(
          'div',
          { class: 'jp-hdh-cat-badges' },
          h('code', {}, `${p.name} ${p.version}`),
          p.synthetic && h('span', { class: 'jp-hdh-cat-badge jp-mod-synthetic' }, __('synthetic')),
          this.accessBadge(p.access)
        )
      ),
      this.accessBox(p.access, p.name, p.changeUrl),
      h('p', { class: 'jp-hdh-cat-description' }, p.description),
      dl,
      this.section(__('Tables'), this.tablesList(p)),
      this.section(__('Quality report'), this.quality(p)),
      this.section(__('Versions'), this.versions(p))
    );
  }

  private accessBadge(a: IAccess): HTMLElement {
    return h(
      'span',
      { class: `jp-hdh-cat-badge jp-hdh-cat-access jp-mod-${a.state}`, 'data-access': a.state },
      this.accessLabel(a.state)
    );
  }

  /** What to do next, in the user's language (the server's English sentence only for a
   * state the widget does not know). */
  private accessSentence(a: IAccess, dataset: string): string {
    const __ = this.trans.__.bind(this.trans);
    switch (a.state) {
      case 'mounted':
        return __('%1 is mounted read-only in this sandbox under /data/%1/.', dataset);
      case 'permitted':
        return a.restart
          ? __(
              "%1 is chosen for this sandbox but not mounted yet: restart the sandbox from the project's datasets page.",
              dataset
            )
          : __(
              "The permit of project %1 covers %2, but this sandbox does not mount it: choose it on the project's datasets page (the sandbox restarts).",
              a.project,
              dataset
            );
      case 'not_permitted':
        if (a.application) {
          return __(
            'Access requested: application #%1 (%2).',
            a.application.id,
            this.requestStateLabel(a.application.state)
          );
        }
        if (a.youLead) {
          return __(
            "The permit of project %1 does not cover %2. As the project's lead, you may request access: the committee gives its opinion, then the authority decides; once approved, %2 is added to the project's permit.",
            a.project,
            dataset
          );
        }
        return a.leads.length
          ? __(
              "The permit of project %1 does not cover %2. Ask the project lead (%3) to request access: the data controller adds %2 to the project's permit once the access request is approved.",
              a.project,
              dataset,
              a.leads.join(', ')
            )
          : __(
              "The permit of project %1 does not cover %2. Ask the project lead to request access: the data controller adds %2 to the project's permit once the access request is approved.",
              a.project,
              dataset
            );
      default:
        return a.how;
    }
  }

  private accessBox(a: IAccess, dataset: string, changeUrl: string): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const versions =
      a.state === 'mounted'
        ? __('Versions mounted: %1.', a.mounted.join(', '))
        : a.permitted.length
          ? __('Versions permitted: %1.', a.permitted.join(', '))
          : '';
    const box = h(
      'div',
      { class: `jp-hdh-cat-accessBox jp-mod-${a.state}` },
      h(
        'strong',
        {},
        a.project
          ? __('Your access in project %1: %2.', a.project, this.accessLabel(a.state))
          : __('Your access: %1.', this.accessLabel(a.state))
      ),
      ' ',
      this.accessSentence(a, dataset),
      versions && h('span', { class: 'jp-hdh-muted' }, ` ${versions}`)
    );
    if (a.state === 'permitted' && changeUrl.startsWith('/') && !changeUrl.startsWith('//')) {
      box.append(
        ' ',
        button(__('Choose what this sandbox mounts'), () =>
          window.open(changeUrl, '_blank', 'noopener')
        )
      );
    }
    if (a.state === 'not_permitted' && a.youLead && !a.application) {
      const open = button(__('Request access'), () => this.requestForm(box, open, a, dataset), {
        class: 'jp-hdh-button jp-hdh-cat-requestAccess'
      });
      box.append(' ', open);
    }
    return box;
  }

  /** The access request's form (under the access box): the public-interest justification
   * and the methodology, both required; the server's one-line reason shows in it. */
  private requestForm(
    box: HTMLElement,
    open: HTMLButtonElement,
    a: IAccess,
    dataset: string
  ): void {
    const __ = this.trans.__.bind(this.trans);
    open.disabled = true;
    const publicInterest = h('textarea', {
      name: 'public_interest',
      rows: '3',
      maxlength: '10000',
      'aria-required': 'true'
    });
    const methodology = h('textarea', {
      name: 'methodology',
      rows: '3',
      maxlength: '10000',
      'aria-required': 'true'
    });
    const error = h('p', { class: 'jp-hdh-error jp-hdh-cat-requestError', role: 'alert' });
    const submit = button(
      __('Submit the request'),
      () => void this.submitRequest(box, a, dataset, publicInterest, methodology, error, submit),
      { class: 'jp-hdh-button jp-hdh-submit jp-hdh-cat-requestSubmit' }
    );
    const cancel = button(__('Cancel'), () => {
      form.remove();
      open.disabled = false;
      open.focus();
    });
    const form = h(
      'form',
      { class: 'jp-hdh-cat-requestForm', 'aria-label': __('Request access to %1', dataset) },
      h(
        'p',
        { class: 'jp-hdh-muted' },
        __(
          'The request amends the permit of project %1 to add %2: the committee reads it, then the authority decides.',
          a.project,
          dataset
        )
      ),
      h('label', { class: 'jp-hdh-field' }, __('Public-interest justification'), publicInterest),
      h('label', { class: 'jp-hdh-field' }, __('Methodology'), methodology),
      error,
      h('div', { class: 'jp-hdh-cat-requestActions' }, submit, cancel)
    );
    form.addEventListener('submit', e => e.preventDefault());
    box.after(form);
    publicInterest.focus();
  }

  private async submitRequest(
    box: HTMLElement,
    a: IAccess,
    dataset: string,
    publicInterest: HTMLTextAreaElement,
    methodology: HTMLTextAreaElement,
    error: HTMLElement,
    submit: HTMLButtonElement
  ): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const form = submit.closest('form');
    const why = publicInterest.value.trim();
    const how = methodology.value.trim();
    if (!why || !how) {
      error.textContent = __(
        'Both the public-interest justification and the methodology are required.'
      );
      (why ? methodology : publicInterest).focus();
      return;
    }
    error.textContent = '';
    const controls = form ? Array.from(form.querySelectorAll('button')) : [submit];
    let body: unknown;
    try {
      body = await whileBusy(controls, () =>
        postJSON(hdhPath('catalogue', 'datasets', dataset, 'request-access'), {
          public_interest: why,
          methodology: how
        })
      );
    } catch (err) {
      error.textContent = this.describe(err, __('The access request could not be filed.'));
      return;
    }
    if (body === undefined) {
      return; // already being submitted
    }
    const filed = parseAccessRequest(body);
    if (!filed || !this._page || this._page.name !== dataset) {
      void this.openDataset(dataset); // an answer the widget does not know: read the page again
      return;
    }
    this._page.access = { ...a, application: filed };
    const done = h(
      'p',
      { class: 'jp-hdh-cat-done jp-hdh-cat-requestDone', role: 'status' },
      __(
        'Access requested: application #%1. The committee gives its opinion, then the authority decides; you are notified of each step.',
        filed.id
      )
    );
    const fresh = this.accessBox(this._page.access, dataset, this._page.changeUrl);
    form?.remove();
    box.replaceWith(fresh);
    fresh.after(done);
  }

  private tablesList(p: IDatasetPage): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    if (p.tables.length === 0) {
      return h('p', { class: 'jp-hdh-muted' }, __('This version has no table.'));
    }
    const table = h(
      'table',
      { class: 'jp-hdh-cat-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, __('Table')),
          h('th', {}, __('Title')),
          h('th', {}, __('Rows')),
          h('th', {}, __('Columns')),
          h('th', {}, '')
        )
      )
    );
    const body = h('tbody', {});
    for (const t of p.tables) {
      body.append(
        h(
          'tr',
          { 'data-table': t.name },
          h('td', {}, h('code', {}, t.name)),
          h('td', {}, t.title),
          h('td', { class: 'jp-hdh-cat-num' }, formatNumber(t.rows, this.trans)),
          h('td', { class: 'jp-hdh-cat-num' }, String(t.columnCount)),
          h(
            'td',
            {},
            button(__('Data dictionary'), () => void this.openTable(t.name), {
              class: 'jp-hdh-button jp-hdh-cat-openTable',
              'aria-label': __('Data dictionary of %1', t.name)
            })
          )
        )
      );
    }
    table.append(body);
    return table;
  }

  private quality(p: IDatasetPage): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const out = h('div', {});
    if (p.qualityPassed !== null || p.qualityFailed !== null) {
      out.append(
        h(
          'p',
          { class: p.qualityFailed ? 'jp-hdh-cat-qfail' : 'jp-hdh-cat-qpass' },
          __('%1 checks passed, %2 failed.', p.qualityPassed ?? 0, p.qualityFailed ?? 0),
          p.qualitySummary ? ` ${p.qualitySummary}` : ''
        )
      );
    }
    if (p.qualityError) {
      out.append(
        h(
          'p',
          { class: 'jp-hdh-error' },
          __('The quality report could not be read: %1', p.qualityError)
        )
      );
    }
    if (p.qualityChecks.length) {
      const details = h(
        'details',
        { class: 'jp-hdh-cat-checks' },
        h('summary', {}, __('Every check (%1)', p.qualityChecks.length))
      );
      const list = h('table', { class: 'jp-hdh-cat-table' });
      for (const c of p.qualityChecks) {
        list.append(
          h(
            'tr',
            {},
            h('td', {}, h('code', {}, c.id)),
            h('td', { class: `jp-hdh-cat-check jp-mod-${c.status}` }, c.status),
            h('td', {}, this.checkDetail(c))
          )
        );
      }
      details.append(list);
      out.append(details);
    }
    if (!out.firstChild) {
      out.append(h('p', { class: 'jp-hdh-muted' }, __('No quality report for this version.')));
    }
    return out;
  }

  /** A check's place, failing rows and share (in the display language), and its note. */
  private checkDetail(c: IQualityCheck): string {
    const rows =
      c.violated === null
        ? ''
        : this.trans._n('%1 row', '%1 rows', c.violated, formatNumber(c.violated, this.trans));
    const pct = c.pct === null ? '' : formatPercent(c.pct, this.trans);
    return [c.where, rows, pct, c.note].filter(x => x).join(' · ');
  }

  private versions(p: IDatasetPage): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const list = h('ul', { class: 'jp-hdh-cat-versions' });
    for (const v of p.versions) {
      list.append(
        h(
          'li',
          {},
          h('code', {}, v.version),
          ` ${this.statusLabel(v.status)}`,
          v.createdAt ? ` · ${formatDate(v.createdAt, this.trans)}` : '',
          v.version === p.version ? ` · ${__('shown here')}` : ''
        )
      );
    }
    return list;
  }

  private renderTable(p: IDatasetPage, t: ITable): void {
    const __ = this.trans.__.bind(this.trans);
    clear(this._detail);
    this._detail.removeAttribute('aria-busy');
    const back = button(`← ${p.title}`, () => void this.openDataset(p.name), {
      class: 'jp-hdh-button jp-hdh-cat-back'
    });
    const checks: HTMLInputElement[] = [];
    const head = h(
      'tr',
      {},
      h('th', {}, ''),
      h('th', {}, __('Column')),
      h('th', {}, __('Type')),
      h('th', {}, __('Description')),
      h('th', {}, __('Code list')),
      h('th', {}, __('Keys'))
    );
    const body = h('tbody', {});
    for (const c of t.columns) {
      const box = h('input', {
        type: 'checkbox',
        'aria-label': __('Read %1', c.name),
        'data-column': c.name
      });
      box.checked = true;
      checks.push(box);
      const keys = [
        c.primaryKey && __('primary key'),
        c.foreignKey && __('→ %1', c.foreignKey),
        c.required && __('required')
      ].filter(x => x) as string[];
      body.append(
        h(
          'tr',
          { 'data-column': c.name },
          h('td', {}, box),
          h('td', {}, h('code', {}, c.name)),
          h('td', {}, c.type),
          h('td', {}, c.description),
          h('td', {}, c.nomenclature),
          h('td', {}, keys.join(', '))
        )
      );
    }
    const all = h('input', { type: 'checkbox', 'aria-label': __('Read every column') });
    all.checked = true;
    all.addEventListener('change', () => checks.forEach(b => (b.checked = all.checked)));
    head.firstChild?.appendChild(all);

    const engine = h('select', { class: 'jp-hdh-cat-engine', 'aria-label': __('Engine') });
    for (const e of ENGINES) {
      engine.append(h('option', { value: e }, e));
    }
    engine.value = 'duckdb';
    this._insert = button(
      __('Insert hdh.read cell'),
      () => {
        const columns = checks.filter(b => b.checked).map(b => b.dataset.column ?? '');
        this.insert(p.name, t.name, engine.value as Engine, columns);
      },
      { class: 'jp-hdh-button jp-hdh-submit jp-hdh-cat-insert' }
    );
    this._insertWhy = h('span', { class: 'jp-hdh-muted jp-hdh-cat-insertWhy' });
    const mountedNote =
      p.access.state === 'mounted'
        ? null
        : h(
            'p',
            { class: 'jp-hdh-cat-warn' },
            __('This sandbox does not mount %1: the cell will fail until it does.', p.name)
          );

    this._detail.append(
      back,
      h(
        'div',
        { class: 'jp-hdh-cat-pageHead' },
        h(
          'h2',
          { class: 'jp-hdh-cat-title' },
          h('code', {}, t.name),
          t.title ? ` — ${t.title}` : ''
        ),
        h(
          'div',
          { class: 'jp-hdh-cat-badges' },
          h('code', {}, `${p.name} ${p.version}`),
          this.accessBadge(p.access)
        )
      ),
      t.description && h('p', { class: 'jp-hdh-cat-description' }, t.description),
      h(
        'p',
        { class: 'jp-hdh-muted' },
        __('%1 rows, %2 columns.', formatNumber(t.rows, this.trans), t.columns.length)
      ),
      h(
        'div',
        { class: 'jp-hdh-cat-insertBar' },
        this.labelled(__('Engine'), engine),
        this._insert,
        this._insertWhy
      ),
      mountedNote ?? '',
      this._insertDone,
      h('table', { class: 'jp-hdh-cat-table jp-hdh-cat-dictionary' }, h('thead', {}, head), body)
    );
    this._insertDone.textContent = '';
    this.updateInsertState();
  }

  private insert(dataset: string, table: string, engine: Engine, columns: string[]): void {
    const __ = this.trans.__.bind(this.trans);
    const nb = this.notebook();
    if (!nb) {
      this.updateInsertState();
      return;
    }
    try {
      const index = insertCellBelow(nb, readCellSource(dataset, table, engine, columns));
      this._insertDone.className = 'jp-hdh-cat-done';
      this._insertDone.textContent = __('Inserted as cell %1 of %2.', index + 1, nb.context.path);
      this.reveal(nb);
    } catch (error) {
      this._insertDone.className = 'jp-hdh-error';
      this._insertDone.textContent = __(
        'The cell could not be inserted: %1',
        errorText(error, this.trans)
      );
    }
  }

  // -- small helpers ----------------------------------------------------------------------

  private section(title: string, body: HTMLElement): HTMLElement {
    return h('section', { class: 'jp-hdh-cat-section' }, h('h3', {}, title), body);
  }

  private setStatus(text: string, cls: string): void {
    this._status.className = `jp-hdh-cat-status ${cls}`;
    this._status.setAttribute('role', cls.includes('jp-hdh-error') ? 'alert' : 'status');
    clear(this._status);
    if (cls.includes('jp-hdh-cat-loading')) {
      this._status.append(h('span', { class: 'jp-hdh-spinner' }));
    }
    this._status.append(text);
  }

  /** What failed, then why in the user's words (`format.ts`: the server's reason, a lead). */
  private describe(error: unknown, what: string): string {
    return `${what} ${errorText(error, this.trans)}`;
  }

  private accessLabel(state: string): string {
    const __ = this.trans.__.bind(this.trans);
    switch (state) {
      case 'mounted':
        return __('Mounted');
      case 'permitted':
        return __('Permitted, not mounted');
      case 'not_permitted':
        return __('Not permitted');
      default:
        return __('Access unknown');
    }
  }

  /** An open application's state in words (`submitted`, `changes_requested`). */
  private requestStateLabel(state: string): string {
    const __ = this.trans.__.bind(this.trans);
    return state === 'submitted'
      ? __('submitted')
      : state === 'changes_requested'
        ? __('changes requested')
        : state;
  }

  private rightsLabel(r: string): string {
    const __ = this.trans.__.bind(this.trans);
    return r === 'public'
      ? __('public')
      : r === 'restricted'
        ? __('restricted')
        : r === 'non-public'
          ? __('non-public')
          : r;
  }

  private statusLabel(s: string): string {
    const __ = this.trans.__.bind(this.trans);
    return s === 'current' ? __('current') : s === 'superseded' ? __('superseded') : s;
  }

  private kindLabel(k: string): string {
    const __ = this.trans.__.bind(this.trans);
    return k === 'table' ? __('table') : k === 'variable' ? __('variable') : __('dataset');
  }

  /** EU data-theme codes (the catalogue's `theme`) in words; literal msgids for extraction. */
  private themeLabel(code: string): string {
    const __ = this.trans.__.bind(this.trans);
    const names: Record<string, string> = {
      AGRI: __('Agriculture'),
      ECON: __('Economy'),
      EDUC: __('Education'),
      ENER: __('Energy'),
      ENVI: __('Environment'),
      GOVE: __('Government'),
      HEAL: __('Health'),
      INTR: __('International'),
      JUST: __('Justice'),
      OP_DATPRO: __('Provisional data'),
      REGI: __('Regions'),
      SOCI: __('Society'),
      TECH: __('Science and technology'),
      TRAN: __('Transport')
    };
    return names[code] ?? code;
  }

  get view(): View {
    return this._view;
  }

  private _input: HTMLInputElement;
  private _theme: HTMLSelectElement;
  private _coding: HTMLSelectElement;
  private _rights: HTMLSelectElement;
  private _synthetic: HTMLSelectElement;
  private _from: HTMLInputElement;
  private _to: HTMLInputElement;
  private _status: HTMLElement;
  private _results: HTMLElement;
  private _detail: HTMLElement;
  private _insert: HTMLButtonElement | null = null;
  private _insertWhy: HTMLElement | null = null;
  private _insertDone: HTMLElement = h('p', { class: 'jp-hdh-cat-done', role: 'status' });
  private _page: IDatasetPage | null = null;
  private _view: View = { kind: 'empty' };
  private _timer = 0;
  private _seq = 0;
  private _detailSeq = 0;
  private _searched = false;
}
