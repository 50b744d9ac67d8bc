/**
 * The HDH side panel: three sections (my data, catalogue, export requests), each a Lumino
 * widget that renders what one `/hdh/*` route answers and degrades to a message when the
 * route is absent or fails; the audit button; and a "Review export requests" button shown
 * when the control plane's session says the person may review. In the review workspace
 * (the `review` named server: no dataset, no bridge) the panel calls no `/hdh/*` route and
 * says so, with the review button only.
 */

import { Clipboard, Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { HdhApiError, requestAPI } from './api';
import { ITrans, englishTrans } from './catalogue-model';
import { button, clear, h } from './dom';
import { errorText } from './format';
import { SharedLoad } from './loading';
import { createRequest, listRequests, reportError, submitRequest, withdrawRequest } from './egress';
import { IExportRequest, IMyData, parseCatalogue, parseMyData, readSnippet } from './model';
import { SessionStore, pageSession } from './session';
import { EDITABLE, WITHDRAWABLE } from './states';

export function restartWarning(trans: ITrans): string {
  return trans.__(
    'Your sandbox will restart to mount the versions you choose. Running kernels stop; files in your workspace are kept.'
  );
}

/**
 * Why a section could not load `what`, said once: a refusal's own line (`format.ts`: what
 * failed and why, e.g. "The server failed (HTTP 500): …"; the section's heading says what),
 * never "`what` failed: … failed"; anything else after `what`.
 */
function describe(error: unknown, what: string, trans: ITrans): string {
  if (error instanceof HdhApiError && error.notAvailable) {
    return trans.__('%1 is not available yet (%2).', what, error.detail);
  }
  if (error instanceof HdhApiError) {
    return error.describe(trans);
  }
  return trans.__('%1 failed: %2', what, errorText(error, trans));
}

/**
 * Opens a same-origin page (already checked by `safeSameOriginPath`) in the top window, so
 * that a hub page framing JupyterLab is replaced too; a cross-origin parent is left alone.
 */
function navigateTop(url: string): void {
  let target: Window = window;
  try {
    if (window.top && window.top.location.origin === window.location.origin) {
      target = window.top;
    }
  } catch {
    target = window; // reading a cross-origin parent's location throws
  }
  target.location.assign(url);
}

abstract class Section extends Widget {
  constructor(
    id: string,
    heading: string,
    protected readonly trans: ITrans
  ) {
    super();
    this.addClass('jp-hdh-section');
    this.node.dataset.hdhSection = id;
    this.header = h('div', { class: 'jp-hdh-sectionHeader' }, h('h3', {}, heading));
    this.body = h('div', { class: 'jp-hdh-sectionBody' });
    this.node.append(this.header, this.body);
  }

  /**
   * Loads the section again. While a load of the same thing is under way (the panel shown
   * again, a second click on Refresh), the callers share it: one request, not two.
   */
  refresh(): Promise<void> {
    return this._loads.start(this.loadKey());
  }

  /**
   * Loads the section after a change the user made (a request created, submitted…): a load
   * under way may have read the state before the change, so this one starts after it.
   */
  reload(): Promise<void> {
    return this._loads.after(this.loadKey());
  }

  /** Reads the route and renders the answer, or why not (never throws). */
  protected abstract load(): Promise<void>;

  /** What a load reads (a search's words): a load of something else is not shared. */
  protected loadKey(): string {
    return '';
  }

  protected message(text: string, cls = 'jp-hdh-muted'): HTMLElement {
    return h('p', { class: cls }, text);
  }

  protected header: HTMLElement;
  protected body: HTMLElement;
  private readonly _loads = new SharedLoad(() => this.load());
}

export class MyDataSection extends Section {
  constructor(trans: ITrans = englishTrans) {
    super('mydata', trans.__('My data'), trans);
  }

  protected async load(): Promise<void> {
    let data: IMyData;
    try {
      data = parseMyData(await requestAPI('mounts'));
    } catch (error) {
      const __ = this.trans.__.bind(this.trans);
      clear(this.body);
      this.body.append(
        this.message(
          describe(error, __('The list of mounted datasets'), this.trans),
          'jp-hdh-error'
        )
      );
      return;
    }
    clear(this.body);
    this.render(data);
  }

  private render(data: IMyData): void {
    const __ = this.trans.__.bind(this.trans);
    if (data.project || data.user) {
      this.body.append(
        this.message(
          [data.project && __('Project %1', data.project), data.user && __('as %1', data.user)]
            .filter(x => x)
            .join(' ')
        )
      );
    }
    if (data.mounts.length === 0) {
      this.body.append(this.message(__('No dataset is mounted in this sandbox.')));
    }
    const list = h('ul', { class: 'jp-hdh-list jp-hdh-mounts' });
    for (const m of data.mounts) {
      list.append(
        h(
          'li',
          { class: 'jp-hdh-mount', 'data-dataset': m.dataset, 'data-version': m.version },
          h('div', { class: 'jp-hdh-name' }, `${m.dataset} ${m.version}`),
          h('code', { class: 'jp-hdh-path' }, m.path),
          h(
            'div',
            { class: 'jp-hdh-actions' },
            button(__('Copy path'), () => Clipboard.copyToSystem(m.path), {
              title: __('Copy %1 (read-only, outside the workspace)', m.path)
            }),
            button(__('Copy code'), () => Clipboard.copyToSystem(readSnippet(m)), {
              title: __('Copy Python code that reads this dataset version')
            })
          ),
          m.tables.length > 0 &&
            h(
              'details',
              { class: 'jp-hdh-tables' },
              h(
                'summary',
                {},
                this.trans._n('%1 table', '%1 tables', m.tables.length, m.tables.length)
              ),
              h('div', { class: 'jp-hdh-muted' }, m.tables.join(', '))
            )
        )
      );
    }
    this.body.append(list);
    if (data.permitted !== null) {
      const others = data.permitted.filter(p => !p.mounted);
      if (others.length > 0) {
        this.body.append(h('h4', {}, __('Permitted, not mounted')));
        const ul = h('ul', { class: 'jp-hdh-list jp-hdh-permitted' });
        for (const p of others) {
          ul.append(h('li', { 'data-dataset': p.dataset }, `${p.dataset} ${p.version}`));
        }
        this.body.append(ul);
      }
    }
    if (data.permittedError) {
      this.body.append(
        this.message(__('Permitted versions unknown: %1', data.permittedError), 'jp-hdh-muted')
      );
    }
    const changeUrl = data.changeUrl;
    if (changeUrl !== null) {
      this.body.append(
        button(__('Change mounted versions…'), () => void this.confirmChange(changeUrl), {
          class: 'jp-hdh-button jp-hdh-change'
        })
      );
    }
  }

  private async confirmChange(url: string): Promise<void> {
    const result = await showDialog({
      title: this.trans.__('Change mounted versions'),
      body: restartWarning(this.trans),
      buttons: [
        Dialog.cancelButton({ label: this.trans.__('Cancel') }),
        Dialog.okButton({ label: this.trans.__('Continue') })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    navigateTop(url);
  }
}

export class CatalogueSection extends Section {
  constructor(
    private readonly browse?: (dataset?: string, table?: string) => void,
    trans: ITrans = englishTrans
  ) {
    super('catalogue', trans.__('Catalogue'), trans);
    const __ = trans.__.bind(trans);
    if (browse) {
      this.header.append(
        button(__('Browse the catalogue'), () => browse(), {
          class: 'jp-hdh-button jp-hdh-browse',
          title: __('Open the catalogue browser: filters, dataset pages, data dictionaries')
        })
      );
    }
    this._input = h('input', {
      type: 'search',
      class: 'jp-hdh-search',
      placeholder: __('Search datasets, tables, variables'),
      'aria-label': __('Search the catalogue')
    });
    const form = h(
      'form',
      { class: 'jp-hdh-searchForm' },
      this._input,
      h('button', { type: 'submit', class: 'jp-hdh-button' }, __('Search'))
    );
    form.addEventListener('submit', e => {
      e.preventDefault();
      void this.refresh();
    });
    this.header.after(form);
  }

  protected loadKey(): string {
    return this._input.value.trim();
  }

  protected async load(): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const q = this._input.value.trim();
    const seq = ++this._seq;
    let body: unknown;
    try {
      body = await requestAPI('catalogue', {}, q ? { q } : undefined);
    } catch (error) {
      if (seq === this._seq) {
        clear(this.body);
        this.body.append(
          this.message(describe(error, __('The catalogue'), this.trans), 'jp-hdh-error')
        );
      }
      return;
    }
    if (seq !== this._seq) {
      return; // a newer search answered first
    }
    clear(this.body);
    const hits = parseCatalogue(body);
    if (hits.length === 0) {
      this.body.append(
        this.message(q ? __('Nothing matches “%1”.', q) : __('The catalogue is empty.'))
      );
      return;
    }
    const list = h('ul', { class: 'jp-hdh-list jp-hdh-results' });
    for (const hit of hits) {
      const where = [[hit.dataset, hit.version].filter(x => x).join(' '), hit.table, hit.variable];
      list.append(
        h(
          'li',
          {
            class: 'jp-hdh-hit',
            'data-dataset': hit.dataset,
            'data-version': hit.version,
            'data-table': hit.table,
            'data-variable': hit.variable
          },
          h('div', { class: 'jp-hdh-name' }, where.filter(x => x).join(' › ')),
          hit.description && h('div', { class: 'jp-hdh-muted' }, hit.description)
        )
      );
      const browse = this.browse;
      const item = list.lastElementChild as HTMLElement;
      if (browse && hit.dataset) {
        // a hit opens its dataset's page (and its table's dictionary) in the browser
        item.classList.add('jp-hdh-openable');
        item.tabIndex = 0;
        item.title = __('Open in the catalogue browser');
        const open = () => browse(hit.dataset, hit.table || undefined);
        item.addEventListener('click', open);
        item.addEventListener('keydown', e => {
          if (e.key === 'Enter') {
            open();
          }
        });
      }
    }
    this.body.append(list);
  }

  private _input: HTMLInputElement;
  private _seq = 0;
}

export class ExportSection extends Section {
  constructor(trans: ITrans = englishTrans) {
    super('export', trans.__('Export requests'), trans);
    this.header.append(
      h(
        'div',
        { class: 'jp-hdh-actions' },
        button(trans.__('New request'), () => void this.newRequest(), {
          class: 'jp-hdh-button jp-hdh-new'
        }),
        button(trans.__('Refresh'), () => void this.refresh())
      )
    );
  }

  protected async load(): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    let requests: IExportRequest[];
    try {
      requests = await listRequests();
    } catch (error) {
      clear(this.body);
      const text =
        error instanceof HdhApiError && error.notAvailable
          ? __(
              'Export requests are not available yet in this sandbox (the airlock service did not answer).'
            )
          : describe(error, __('The list of export requests'), this.trans);
      this.body.append(this.message(text, 'jp-hdh-error'));
      return;
    }
    clear(this.body);
    if (requests.length === 0) {
      this.body.append(
        this.message(
          __(
            'No export request yet. Right-click a file in the file browser: “Add to export request…”.'
          )
        )
      );
      return;
    }
    const list = h('ul', { class: 'jp-hdh-list jp-hdh-requests' });
    for (const r of requests) {
      list.append(this.renderRequest(r));
    }
    this.body.append(list);
  }

  private renderRequest(r: IExportRequest): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const files = h('ul', { class: 'jp-hdh-files' });
    for (const f of r.files ?? []) {
      const status = f.checkStatus;
      files.append(
        h(
          'li',
          { class: 'jp-hdh-file', 'data-path': f.path },
          h('code', {}, f.path),
          ' ',
          h('span', { class: 'jp-hdh-role' }, f.role || '?'),
          status &&
            h(
              'span',
              { class: `jp-hdh-check jp-hdh-check-${status.replace(/[^a-z_]/g, '')}` },
              __('check: %1', status)
            ),
          f.checkSummary && h('div', { class: 'jp-hdh-muted' }, f.checkSummary),
          f.checkError && h('div', { class: 'jp-hdh-error' }, f.checkError),
          f.flags.length > 0 &&
            h(
              'ul',
              { class: 'jp-hdh-flags' },
              ...f.flags.map(fl =>
                h(
                  'li',
                  {},
                  [fl.severity && `[${fl.severity}]`, fl.rule, fl.message, fl.location]
                    .filter(x => x)
                    .join(' ')
                )
              )
            )
        )
      );
    }
    if (r.files === null) {
      files.append(
        h(
          'li',
          { class: 'jp-hdh-muted' },
          this.trans._n('%1 file', '%1 files', r.fileCount, r.fileCount)
        )
      );
    }
    const comments =
      r.comments.length > 0 &&
      h(
        'ul',
        { class: 'jp-hdh-comments' },
        ...r.comments.map(c => h('li', {}, `${c.author || '?'}: ${c.body}`))
      );
    const actions = h('div', { class: 'jp-hdh-actions' });
    if (EDITABLE.has(r.state)) {
      const label = r.state === 'draft' ? __('Submit') : __('Resubmit');
      const submit = button(label, () => void this.act(r, 'submit'), {
        class: 'jp-hdh-button jp-hdh-submit'
      });
      if (r.fileCount === 0) {
        submit.disabled = true;
        submit.title = __('Add files first (file browser: right-click → Add to export request…)');
      }
      actions.append(submit);
    }
    if (WITHDRAWABLE.has(r.state)) {
      actions.append(button(__('Withdraw'), () => void this.act(r, 'withdraw')));
    }
    const uiUrl = r.uiUrl;
    if (uiUrl !== null) {
      actions.append(button(__('Open in the HDH portal'), () => navigateTop(uiUrl)));
    }
    const released =
      r.released.length > 0 &&
      h(
        'p',
        { class: 'jp-hdh-released' },
        __(
          'Released: %1. Download them from the HDH portal (outside this sandbox).',
          r.released.join(', ')
        )
      );
    return h(
      'li',
      { class: 'jp-hdh-request', 'data-request-id': r.id, 'data-state': r.state },
      h(
        'div',
        { class: 'jp-hdh-name' },
        r.title || __('(untitled)'),
        ' ',
        h(
          'span',
          { class: `jp-hdh-state jp-hdh-state-${r.state.replace(/[^a-z_]/g, '')}` },
          r.state
        )
      ),
      h('div', { class: 'jp-hdh-muted' }, `#${r.id}`),
      files,
      comments,
      released,
      actions
    );
  }

  private async newRequest(): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const result = await InputDialog.getText({
      title: __('New export request'),
      placeholder: __('Title'),
      okLabel: __('OK'),
      cancelLabel: __('Cancel')
    });
    if (!result.button.accept || !result.value || !result.value.trim()) {
      return;
    }
    try {
      await createRequest(result.value.trim());
    } catch (error) {
      await reportError(__('Could not create the export request'), error, this.trans);
    }
    await this.reload();
  }

  private async act(r: IExportRequest, action: 'submit' | 'withdraw'): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    if (action === 'withdraw') {
      const ok = await showDialog({
        title: __('Withdraw export request'),
        body: __('Withdraw “%1”? It cannot be resubmitted.', r.title || r.id),
        buttons: [
          Dialog.cancelButton({ label: __('Cancel') }),
          Dialog.warnButton({ label: __('Withdraw') })
        ]
      });
      if (!ok.button.accept) {
        return;
      }
    }
    try {
      await (action === 'submit' ? submitRequest(r.id) : withdrawRequest(r.id));
    } catch (error) {
      await reportError(
        action === 'submit'
          ? __('Could not submit the export request')
          : __('Could not withdraw the export request'),
        error,
        this.trans
      );
    }
    await this.reload();
  }
}

/** The audit section: one button that opens the code audit view (`audit.ts`). */
export class AuditSection extends Widget {
  constructor(open: () => void, trans: ITrans = englishTrans) {
    super();
    this.addClass('jp-hdh-section');
    this.node.dataset.hdhSection = 'audit';
    this.node.append(
      h(
        'div',
        { class: 'jp-hdh-sectionHeader' },
        h('h3', {}, trans.__('Audit')),
        button(trans.__('Audited code'), () => open(), {
          class: 'jp-hdh-button jp-hdh-audit-open',
          title: trans.__(
            "The project's audited code: cells, terminal lines, saved files (project leads)"
          )
        })
      )
    );
  }
}

/**
 * The review section: "Review export requests" (`review.ts`), in the panel when the control
 * plane's session says this person may review (always in the review workspace).
 */
export class ReviewSection extends Widget {
  constructor(
    open: () => void,
    prefix: string,
    trans: ITrans = englishTrans,
    private readonly session: SessionStore = pageSession(prefix)
  ) {
    super();
    this.addClass('jp-hdh-section');
    this.node.dataset.hdhSection = 'review';
    this.node.append(
      h(
        'div',
        { class: 'jp-hdh-sectionHeader' },
        h('h3', {}, trans.__('Review')),
        button(trans.__('Review export requests'), () => open(), {
          class: 'jp-hdh-button jp-hdh-review-launch',
          title: trans.__('The queue of export requests to review (reviewers)')
        })
      )
    );
  }

  /** Whether the control plane's session says this person may review (false when unknown). */
  async mayReview(): Promise<boolean> {
    const state = await this.session.get();
    return state.kind === 'ok' && state.session.mayReview;
  }
}

export interface IPanelOptions {
  /** opens the review widget (the review section's button) */
  review?: () => void;
  /** the control plane's prefix (`/services/hdh/`), for the session */
  prefix?: string;
  /** the review workspace: no dataset, no bridge (no `/hdh/*` call) */
  reviewWorkspace?: boolean;
}

/** The left-sidebar panel; refreshes its sections each time it is shown. */
export class HdhPanel extends Panel {
  /** `browse` opens the catalogue browser (the catalogue section's button and its hits);
   * `audit` the code audit view (the audit section's button); `options.review` the review
   * widget. */
  constructor(
    browse?: (dataset?: string, table?: string) => void,
    audit?: () => void,
    trans: ITrans = englishTrans,
    options: IPanelOptions = {}
  ) {
    super();
    this.id = 'jp-hdh-panel';
    this.addClass('jp-hdh-panel');
    this.reviewWorkspace = options.reviewWorkspace === true;
    if (this.reviewWorkspace) {
      // no bridge here: nothing below asks a /hdh/* route
      const note = new Widget();
      note.addClass('jp-hdh-section');
      note.node.dataset.hdhSection = 'review-workspace';
      note.node.append(
        h(
          'p',
          { class: 'jp-hdh-review-workspace' },
          trans.__('Review workspace: no dataset is mounted here')
        ),
        h(
          'p',
          { class: 'jp-hdh-muted' },
          trans.__(
            'Export requests are reviewed from the control plane, in the review widget; their files never enter this workspace.'
          )
        )
      );
      this.addWidget(note);
    } else {
      this.myData = new MyDataSection(trans);
      this.catalogue = new CatalogueSection(browse, trans);
      this.exports = new ExportSection(trans);
      this.addWidget(this.myData);
      this.addWidget(this.catalogue);
      this.addWidget(this.exports);
      if (audit) {
        this.addWidget(new AuditSection(audit, trans));
      }
    }
    if (options.review) {
      this.review = new ReviewSection(options.review, options.prefix ?? '/services/hdh/', trans);
      if (this.reviewWorkspace) {
        this.addWidget(this.review);
      }
    }
  }

  refresh(): Promise<void> {
    return Promise.all([
      this.myData?.refresh(),
      this.catalogue?.refresh(),
      this.exports?.refresh(),
      this.refreshReview()
    ]).then(() => undefined);
  }

  /** In a project's lab, the review section is there only while the session says may_review. */
  private async refreshReview(): Promise<void> {
    const review = this.review;
    if (!review || this.reviewWorkspace) {
      return;
    }
    const may = await review.mayReview();
    if (may && review.parent !== this) {
      this.addWidget(review);
    } else if (!may && review.parent === this) {
      review.parent = null;
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  readonly reviewWorkspace: boolean;
  readonly myData: MyDataSection | null = null;
  readonly catalogue: CatalogueSection | null = null;
  readonly exports: ExportSection | null = null;
  readonly review: ReviewSection | null = null;
}
