/**
 * The review widget, a main-area widget ("HDH: Review export requests") for reviewers: the
 * queue (age, project, title, author, state, files, reviewers, "awaiting you" first), and a
 * request's page: per file its checks, its inert rendering, its provenance (the audited
 * code that produced it), the votes and exceptions as the API gives them (blinded), the
 * reviewer's vote and exception, comments public and private, and the request-level
 * decisions and release where they apply; the request's web page as the fallback.
 *
 * It talks from the browser to the control plane (`review-model.ts`: same origin, hub
 * cookie + `X-HDH-Token`, the page's session from `session.ts`), never through the
 * sandbox. A file is shown only as the control plane renders it, in `<iframe sandbox="">`
 * from its `render` route (`dom.ts`: `inertFrame`): no script, an opaque origin, never
 * JupyterLab's. Not signed in to the review service: a link opens its login in a new tab
 * and the widget retries when the window gets the focus back. Not a reviewer: a plain
 * message, nothing else.
 *
 * Every user string goes through `trans.__`; text from the server goes in as text only.
 */

import { Widget } from '@lumino/widgets';

import { ITrans, englishTrans } from './catalogue-model';
import { button, clear, h, inertFrame, pageLink } from './dom';
import {
  DECISIONS,
  Decision,
  IFileView,
  IQueueItem,
  IRequestView,
  ReviewClient,
  ReviewError,
  ageText,
  checkLabel,
  decisionLabel,
  pageUrl,
  provenanceLabel,
  renderUrl,
  stateLabel
} from './review-model';
import { ISession, SessionStore, clientFor, pageSession } from './session';
import { AWAITING_REVIEWER } from './states';

export const REVIEW_REQUESTS = 'hdh:review-requests';
export const REVIEW_WIDGET_ID = 'jp-hdh-review';

export class ReviewView extends Widget {
  constructor(
    readonly prefix: string,
    private readonly trans: ITrans = englishTrans,
    /** the control plane's session (the page's, `pageSession`, unless given) */
    session?: SessionStore,
    /** opens the code audit view on a project's audited code, read with this client */
    private readonly openAudit?: (project: string, client: ReviewClient) => void
  ) {
    super();
    const __ = trans.__.bind(trans);
    this._store = session ?? pageSession(prefix);
    this.id = REVIEW_WIDGET_ID;
    this.addClass('jp-hdh-review');
    this.title.label = __('HDH Review');
    this.title.caption = __('Export requests to review');
    this.title.closable = true;
    this._status = h('div', {
      class: 'jp-hdh-review-status',
      role: 'status',
      'aria-live': 'polite'
    });
    this._body = h('div', { class: 'jp-hdh-review-body' });
    this.node.append(this._status, this._body);
    this._onFocus = () => {
      if (this._needsLogin && !this.isDisposed) {
        void this.load();
      }
    };
    window.addEventListener('focus', this._onFocus);
  }

  dispose(): void {
    window.removeEventListener('focus', this._onFocus);
    super.dispose();
  }

  /** The signed-in reviewer's session (null until loaded, or when not signed in). */
  get session(): ISession | null {
    return this._session;
  }

  /** Loads the session, then the queue (or the open request again). */
  async load(): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const seq = ++this._seq;
    this.setStatus(__('Loading the review service…'), 'jp-hdh-muted');
    const state = await this._store.get();
    if (seq !== this._seq) {
      return;
    }
    this._needsLogin = state.kind === 'login';
    if (state.kind === 'login') {
      this.showLogin(state.loginUrl);
      return;
    }
    if (state.kind === 'error') {
      clear(this._body);
      this.setStatus(
        __('The review service could not be reached: %1', state.detail),
        'jp-hdh-error'
      );
      return;
    }
    this._session = state.session;
    this._client = clientFor(this._store, state.session);
    if (!state.session.mayReview) {
      clear(this._body);
      this._body.append(
        h(
          'p',
          { class: 'jp-hdh-review-notreviewer' },
          __(
            'The review queue is for reviewers: your role (%1) does not review export requests.',
            state.session.role || '?'
          )
        )
      );
      this.setStatus('', '');
      return;
    }
    if (this._open !== null) {
      await this.openRequest(this._open);
    } else {
      await this.showQueue();
    }
  }

  /** The queue: what awaits me first, then the oldest. */
  async showQueue(): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const client = this._client;
    if (!client) {
      return this.load();
    }
    this._open = null;
    const seq = ++this._seq;
    this.setStatus(__('Loading the queue…'), 'jp-hdh-muted');
    let items: IQueueItem[];
    try {
      items = await client.queue();
    } catch (error) {
      if (seq === this._seq) {
        this.refused(error, d => __('The queue could not be loaded: %1', d));
      }
      return;
    }
    if (seq !== this._seq) {
      return;
    }
    clear(this._body);
    const open = items.filter(r => AWAITING_REVIEWER.has(r.state));
    const decided = items.filter(r => !AWAITING_REVIEWER.has(r.state));
    const waiting = open.filter(r => r.awaitingMe).length;
    this._body.append(
      h(
        'div',
        { class: 'jp-hdh-review-top' },
        h('h2', { class: 'jp-hdh-review-heading' }, __('Export requests to review')),
        button(__('Refresh'), () => void this.showQueue(), {
          class: 'jp-hdh-button jp-hdh-review-refresh'
        }),
        this._session && pageLink(this._session.pages, __('Open the review web pages'))
      )
    );
    if (open.length === 0) {
      this._body.append(
        h(
          'p',
          { class: 'jp-hdh-review-empty' },
          __('Nothing to review: no export request awaits a reviewer.')
        )
      );
    } else {
      this._body.append(this.table(open));
    }
    if (decided.length > 0) {
      this._body.append(
        h(
          'details',
          { class: 'jp-hdh-review-decided' },
          h('summary', {}, __('Decided or returned (%1)', decided.length)),
          this.table(decided)
        )
      );
    }
    this.setStatus(
      waiting === 0
        ? __('Nothing awaits your vote.')
        : waiting === 1
          ? __('1 request awaits your vote.')
          : __('%1 requests await your vote.', waiting),
      'jp-hdh-muted'
    );
  }

  private table(items: IQueueItem[]): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const now = Date.now();
    const head = h(
      'tr',
      {},
      ...[
        __('Age'),
        __('Project'),
        __('Title'),
        __('Author'),
        __('State'),
        __('Files'),
        __('Reviewers'),
        ''
      ].map(t => h('th', { scope: 'col' }, t))
    );
    const body = h('tbody', {});
    for (const r of items) {
      const open = button(__('Open'), () => void this.openRequest(r.id), {
        class: 'jp-hdh-button jp-hdh-review-open',
        'aria-label': __('Open request #%1', r.id)
      });
      const tr = h(
        'tr',
        {
          class: 'jp-hdh-review-row' + (r.awaitingMe ? ' jp-hdh-review-mine' : ''),
          'data-request-id': String(r.id),
          'data-state': r.state
        },
        h(
          'td',
          { class: 'jp-hdh-review-age', title: r.submittedAt ?? '' },
          ageText(r.submittedAt, now, this.trans)
        ),
        h('td', {}, r.project),
        h(
          'td',
          { class: 'jp-hdh-review-title' },
          `#${r.id} `,
          r.title || __('(untitled)'),
          r.awaitingMe && h('span', { class: 'jp-hdh-review-awaiting' }, __('awaiting you'))
        ),
        h('td', {}, r.author),
        h('td', { class: 'jp-hdh-review-state' }, stateLabel(r.state, this.trans)),
        h('td', {}, String(r.files)),
        h('td', {}, r.reviewers.join(', ') || '—'),
        h('td', {}, open)
      );
      body.append(tr);
    }
    return h('table', { class: 'jp-hdh-review-queue' }, h('thead', {}, head), body);
  }

  /** One request's page. */
  async openRequest(id: number): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const client = this._client;
    const me = this._session?.user ?? '';
    if (!client) {
      this._open = id;
      return this.load();
    }
    this._open = id;
    const seq = ++this._seq;
    this.setStatus(__('Loading request #%1…', id), 'jp-hdh-muted');
    let view: IRequestView;
    try {
      view = await client.request(id, me);
    } catch (error) {
      if (seq === this._seq) {
        clear(this._body);
        this._body.append(this.backButton());
        this.refused(error, d => __('Request #%1 could not be loaded: %2', id, d));
      }
      return;
    }
    if (seq !== this._seq) {
      return;
    }
    this._view = view;
    this.renderRequest(view);
    this.setStatus('', '');
  }

  private backButton(): HTMLElement {
    return button(`← ${this.trans.__('Back to the queue')}`, () => void this.showQueue(), {
      class: 'jp-hdh-button jp-hdh-review-back'
    });
  }

  /** "Audited code of project X": every cell, terminal line and saved file of the project
   * (the control plane lets a request's reviewers see it). */
  private auditButton(project: string): HTMLElement | string {
    const client = this._client;
    const open = this.openAudit;
    if (!client || !open || !project) {
      return '';
    }
    return button(
      this.trans.__('Audited code of project %1', project),
      () => open(project, client),
      { class: 'jp-hdh-button jp-hdh-review-audit' }
    );
  }

  private renderRequest(v: IRequestView): void {
    const __ = this.trans.__.bind(this.trans);
    clear(this._body);
    this._body.append(
      h(
        'div',
        { class: 'jp-hdh-review-top' },
        this.backButton(),
        this.auditButton(v.project),
        pageLink(pageUrl(this.prefix, v.id), __('Open this request as a web page'), {
          class: 'jp-hdh-review-fallback'
        })
      ),
      h(
        'h2',
        { class: 'jp-hdh-review-heading', 'data-request-id': String(v.id) },
        __('Export request #%1: %2', v.id, v.title || __('(untitled)'))
      ),
      h(
        'p',
        { class: 'jp-hdh-review-meta' },
        __(
          'Project %1 · by %2 · %3 · round %4',
          v.project,
          v.author,
          stateLabel(v.state, this.trans),
          v.round
        )
      )
    );
    for (const f of v.files) {
      this._body.append(this.fileSection(v, f));
    }
    this._body.append(this.commentsSection(v));
    if (v.mayDecide || v.mayRelease) {
      this._body.append(this.decisionSection(v));
    }
  }

  private fileSection(v: IRequestView, f: IFileView): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const status = (f.checkStatus ?? 'none').replace(/[^a-z]/g, '');
    const section = h(
      'section',
      { class: 'jp-hdh-review-file', 'data-path': f.path, 'data-role': f.role },
      h(
        'h3',
        {},
        h('code', {}, f.path),
        ' ',
        h('span', { class: 'jp-hdh-muted' }, this.roleLabel(f.role)),
        ' ',
        h(
          'span',
          { class: `jp-hdh-review-check jp-hdh-review-check-${status}` },
          checkLabel(f.checkStatus, this.trans)
        )
      )
    );
    // the checks' report
    const report = h('div', { class: 'jp-hdh-review-report' });
    if (f.checkSummary) {
      report.append(h('p', {}, f.checkSummary));
    }
    if (f.checkError) {
      report.append(h('p', { class: 'jp-hdh-error' }, f.checkError));
    }
    if (f.flags.length > 0) {
      report.append(
        h(
          'ul',
          { class: 'jp-hdh-review-flags' },
          ...f.flags.map(fl =>
            h(
              'li',
              { 'data-severity': fl.severity },
              [fl.severity && `[${fl.severity}]`, fl.rule, fl.message, fl.location]
                .filter(x => x)
                .join(' ')
            )
          )
        )
      );
    }
    section.append(report);
    // the file as the control plane renders it, inert, in an opaque origin
    section.append(
      h(
        'div',
        { class: 'jp-hdh-review-framebox' },
        inertFrame(
          renderUrl(this.prefix, v.id, f.path),
          __('Safe rendering of %1', f.path),
          'jp-hdh-review-frame'
        )
      )
    );
    // provenance
    if (f.provenance.length > 0) {
      const list = h('ol', { class: 'jp-hdh-review-provenance' });
      for (const p of f.provenance) {
        list.append(
          h(
            'li',
            { 'data-kind': p.kind },
            h('div', {}, provenanceLabel(p, this.trans)),
            p.code && h('pre', { class: 'jp-hdh-review-code' }, p.code),
            p.truncated && h('div', { class: 'jp-hdh-muted' }, __('(code cut)'))
          )
        );
      }
      section.append(
        h(
          'details',
          { class: 'jp-hdh-review-prov' },
          h(
            'summary',
            {},
            this.trans._n(
              'Provenance: the audited code that produced it (%1 entry)',
              'Provenance: the audited code that produced it (%1 entries)',
              f.provenance.length,
              f.provenance.length
            )
          ),
          list
        )
      );
    }
    // votes and exceptions, as the API shows them (another reviewer's stay hidden until both voted)
    if (f.role === 'output') {
      const votes = h(
        'div',
        { class: 'jp-hdh-review-votes' },
        h('h4', {}, __('Votes: %1 of 2', f.voteCount))
      );
      if (f.votes.length > 0) {
        votes.append(
          h(
            'ul',
            {},
            ...f.votes.map(x =>
              h(
                'li',
                { 'data-reviewer': x.reviewer },
                `${x.reviewer}: ${decisionLabel(x.decision, this.trans)}`
              )
            )
          )
        );
      }
      if (f.voteCount > f.votes.length) {
        votes.append(
          h(
            'p',
            { class: 'jp-hdh-muted' },
            __("The other reviewer's vote stays hidden until both have voted.")
          )
        );
      }
      section.append(votes);
    }
    if (f.exceptions.length > 0) {
      section.append(
        h(
          'div',
          { class: 'jp-hdh-review-exceptions' },
          h('h4', {}, __('Exceptions')),
          h(
            'ul',
            {},
            ...f.exceptions.map(e =>
              h('li', { 'data-reviewer': e.reviewer }, `${e.reviewer}: ${e.reason}`)
            )
          )
        )
      );
    }
    if (f.canVote || f.canException) {
      section.append(this.voteForm(v, f));
    }
    return section;
  }

  private voteForm(v: IRequestView, f: IFileView): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const form = h('div', { class: 'jp-hdh-review-voteform' });
    let reason: HTMLTextAreaElement | null = null;
    if (f.canException) {
      reason = h('textarea', {
        class: 'jp-hdh-review-reason jp-hdh-review-exception-reason',
        rows: '2',
        'aria-label': __('Exception reason')
      });
      form.append(
        h(
          'label',
          { class: 'jp-hdh-review-field' },
          h(
            'span',
            {},
            __('Exception to the failed checks: the reason (needed to approve this file)')
          ),
          reason
        ),
        button(
          __('Record the exception'),
          () =>
            void this.act(__('Exception recorded.'), c =>
              c.exception(v.id, f.path, reason?.value ?? '')
            ),
          { class: 'jp-hdh-button jp-hdh-review-exception' }
        )
      );
    }
    if (f.canVote) {
      const labels: Record<Decision, string> = {
        approve: __('Approve'),
        changes: __('Request changes'),
        reject: __('Reject')
      };
      form.append(
        h(
          'div',
          { class: 'jp-hdh-review-decisions' },
          h('span', {}, __('Your vote (final):')),
          ...DECISIONS.map(d =>
            button(
              labels[d],
              () =>
                void this.act(__('Vote recorded.'), c =>
                  c.vote(v.id, f.path, d, d === 'approve' ? reason?.value : undefined)
                ),
              {
                class: `jp-hdh-button jp-hdh-review-vote jp-hdh-review-vote-${d}`,
                'data-decision': d
              }
            )
          )
        )
      );
    }
    return form;
  }

  private commentsSection(v: IRequestView): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const list = (cls: string, comments: IRequestView['publicComments']) =>
      h(
        'ul',
        { class: `jp-hdh-review-comments ${cls}` },
        ...comments.map(c =>
          h('li', {}, h('strong', {}, c.author), c.path ? ` (${c.path})` : '', `: ${c.body}`)
        )
      );
    const section = h(
      'section',
      { class: 'jp-hdh-review-discussion' },
      h('h3', {}, __('Comments')),
      v.publicComments.length > 0
        ? list('jp-hdh-review-public', v.publicComments)
        : h('p', { class: 'jp-hdh-muted' }, __('No public comment.'))
    );
    if (v.viewer === 'reviewer' || v.privateComments.length > 0) {
      section.append(
        h('h4', {}, __('Private comments (reviewers only)')),
        v.privateComments.length > 0
          ? list('jp-hdh-review-private', v.privateComments)
          : h('p', { class: 'jp-hdh-muted' }, __('No private comment.'))
      );
    }
    if (v.mayComment) {
      const body = h('textarea', {
        class: 'jp-hdh-review-reason jp-hdh-review-comment-body',
        rows: '2',
        'aria-label': __('Comment')
      });
      const visibility = h('select', {
        class: 'jp-hdh-review-visibility',
        'aria-label': __('Visibility')
      });
      visibility.append(h('option', { value: 'public' }, __('public (the requester sees it)')));
      if (v.mayCommentPrivately) {
        visibility.append(h('option', { value: 'private' }, __('private (reviewers only)')));
      }
      const about = h('select', { class: 'jp-hdh-review-about', 'aria-label': __('About') });
      about.append(h('option', { value: '' }, __('the whole request')));
      for (const f of v.files) {
        about.append(h('option', { value: f.path }, f.path));
      }
      section.append(
        h(
          'div',
          { class: 'jp-hdh-review-commentform' },
          body,
          h(
            'div',
            { class: 'jp-hdh-review-decisions' },
            visibility,
            about,
            button(
              __('Add the comment'),
              () =>
                void this.act(__('Comment added.'), c =>
                  c.comment(
                    v.id,
                    body.value,
                    visibility.value === 'private' ? 'private' : 'public',
                    about.value || undefined
                  )
                ),
              { class: 'jp-hdh-button jp-hdh-review-comment' }
            )
          )
        )
      );
    }
    return section;
  }

  private decisionSection(v: IRequestView): HTMLElement {
    const __ = this.trans.__.bind(this.trans);
    const section = h(
      'section',
      { class: 'jp-hdh-review-request-actions' },
      h('h3', {}, __('Decision on the request'))
    );
    if (v.mayDecide) {
      const reason = h('textarea', {
        class: 'jp-hdh-review-reason jp-hdh-review-decision-reason',
        rows: '2',
        'aria-label': __('Reason')
      });
      section.append(
        h(
          'label',
          { class: 'jp-hdh-review-field' },
          h('span', {}, __('Reason (needed to return or reject)')),
          reason
        ),
        h(
          'div',
          { class: 'jp-hdh-review-decisions' },
          button(
            __('Approve the request'),
            () =>
              void this.act(__('Request approved.'), c => c.decide(v.id, 'approve', reason.value)),
            { class: 'jp-hdh-button jp-hdh-review-approve' }
          ),
          button(
            __('Return for changes'),
            () =>
              void this.act(__('Request returned.'), c => c.decide(v.id, 'return', reason.value)),
            { class: 'jp-hdh-button jp-hdh-review-return' }
          ),
          button(
            __('Reject the request'),
            () =>
              void this.act(__('Request rejected.'), c => c.decide(v.id, 'reject', reason.value)),
            { class: 'jp-hdh-button jp-hdh-review-reject' }
          )
        )
      );
    }
    if (v.mayRelease) {
      section.append(
        button(
          __('Release to the requester'),
          () => void this.act(__('Released.'), c => c.release(v.id)),
          { class: 'jp-hdh-button jp-hdh-review-release' }
        )
      );
    }
    return section;
  }

  /** Runs one action with progress shown, then reloads the request (or shows the refusal). */
  private async act(done: string, step: (c: ReviewClient) => Promise<unknown>): Promise<void> {
    const __ = this.trans.__.bind(this.trans);
    const client = this._client;
    const v = this._view;
    if (!client || !v || this._busy) {
      return;
    }
    this._busy = true;
    const buttons = [...this._body.querySelectorAll('button')];
    for (const b of buttons) {
      b.disabled = true;
    }
    this.node.setAttribute('aria-busy', 'true');
    this.setStatus(__('Working…'), 'jp-hdh-muted jp-hdh-review-progress');
    try {
      await step(client);
    } catch (error) {
      for (const b of buttons) {
        b.disabled = false;
      }
      this.refused(error, d => __('The review service refused: %1', d), false);
      return;
    } finally {
      this._busy = false;
      this.node.removeAttribute('aria-busy');
    }
    await this.openRequest(v.id);
    this.setStatus(done, 'jp-hdh-review-done');
  }

  /** A refusal as one line (the API's detail in `say`'s sentence); 401: sign in again. */
  private refused(error: unknown, say: (detail: string) => string, clearBody = true): void {
    if (error instanceof ReviewError && error.status === 401) {
      this._needsLogin = true;
      this.showLogin(error.loginUrl ?? `${this.prefix}ui/egress/`);
      return;
    }
    const detail = error instanceof ReviewError ? error.detail : String(error);
    const text = say(detail);
    if (clearBody && !this._body.querySelector('.jp-hdh-review-back')) {
      clear(this._body);
    }
    this.setStatus(text, 'jp-hdh-error jp-hdh-review-refused');
  }

  private showLogin(loginUrl: string): void {
    const __ = this.trans.__.bind(this.trans);
    clear(this._body);
    this.setStatus('', '');
    this._body.append(
      h(
        'div',
        { class: 'jp-hdh-review-login' },
        h('p', {}, __('The review service needs you to sign in (once per browser session).')),
        pageLink(loginUrl, __('Sign in to the review service'), {
          class: 'jp-hdh-button jp-hdh-review-signin'
        }),
        h('p', { class: 'jp-hdh-muted' }, __('This page retries when you come back to it.'))
      )
    );
  }

  private roleLabel(role: string): string {
    switch (role) {
      case 'output':
        return this.trans.__('output');
      case 'supporting':
        return this.trans.__('supporting');
      case 'code':
        return this.trans.__('code');
      default:
        return role;
    }
  }

  private setStatus(text: string, cls: string): void {
    this._status.textContent = text;
    this._status.className = `jp-hdh-review-status ${cls}`;
  }

  private readonly _store: SessionStore;
  private readonly _status: HTMLElement;
  private readonly _body: HTMLElement;
  private readonly _onFocus: () => void;
  private _session: ISession | null = null;
  private _client: ReviewClient | null = null;
  private _view: IRequestView | null = null;
  private _open: number | null = null;
  private _needsLogin = false;
  private _busy = false;
  private _seq = 0;
}
