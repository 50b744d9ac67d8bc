/**
 * The HDH JupyterLab extension: registers the left-sidebar panel (my data, catalogue,
 * export requests), the file browser's "Add to export request…" command and the template
 * studies' launcher cards (`templates.ts`), the catalogue browser (`catalogue.ts`, command
 * "HDH: Browse the catalogue"), the code audit view (`audit.ts`, "HDH: Audited code") and
 * the review widget (`review.ts`, "HDH: Review export requests"). In the review workspace
 * (the `review` named server: no dataset, no bridge) the panel calls no bridge-backed route
 * and the review widget opens on load.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { AUDIT_CODE, AUDIT_EVERY_PROJECT, AuditView } from './audit';
import { BROWSE_CATALOGUE, CatalogueBrowser, INotebookLike, isNotebook } from './catalogue';
import { ITrans, englishTrans } from './catalogue-model';
import { addFilesInteractively } from './egress';
import { HdhPanel } from './panel';
import { REVIEW_REQUESTS, ReviewView } from './review';
import { HdhApiError } from './api';
import { controlPlanePrefix, isReviewWorkspace } from './review-model';
import { clientFor, pageSession } from './session';
import templatesPlugin from './templates';

export const PLUGIN_ID = 'jupyterlab-hdh:panel';
/** The extension's gettext domain (the Python package's locale entry point). */
export const TRANSLATION_DOMAIN = 'jupyterlab_hdh';

export namespace CommandIDs {
  export const open = 'hdh:open-panel';
  export const addToExport = 'hdh:add-to-export-request';
}

// No style attribute anywhere (Content-Security-Policy): the fill comes from jp-icon3.
export const hdhIcon = new LabIcon({
  name: 'jupyterlab-hdh:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M10 3h4v7h7v4h-7v7h-4v-7H3v-4h7z"/>' +
    '</g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'HDH side panel: mounted datasets, catalogue search and export requests.',
  autoStart: true,
  requires: [IFileBrowserFactory],
  optional: [ILayoutRestorer, ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    browsers: IFileBrowserFactory,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ) => {
    // the extension's strings: domain jupyterlab_hdh (jupyterlab_hdh/locale/*/LC_MESSAGES)
    const trans: ITrans = translator ? translator.load(TRANSLATION_DOMAIN) : englishTrans;
    const __ = trans.__.bind(trans);
    const baseUrl = PageConfig.getBaseUrl();
    const prefix = controlPlanePrefix(baseUrl);
    const reviewWorkspace = isReviewWorkspace(baseUrl);
    const panel = new HdhPanel(
      (dataset?: string, table?: string) =>
        void app.commands.execute(BROWSE_CATALOGUE, { dataset: dataset ?? '', table: table ?? '' }),
      () => void app.commands.execute(AUDIT_CODE),
      trans,
      { review: () => void app.commands.execute(REVIEW_REQUESTS), prefix, reviewWorkspace }
    );
    panel.title.icon = hdhIcon;
    panel.title.caption = __('HDH: my data, catalogue, export requests');
    panel.title.label = 'HDH';
    app.shell.add(panel, 'left', { rank: 150 });
    if (restorer) {
      restorer.add(panel, 'jupyterlab-hdh');
    }

    app.commands.addCommand(CommandIDs.open, {
      label: __('HDH: My Data, Catalogue, Export Requests'),
      execute: () => app.shell.activateById(panel.id)
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.open, category: 'HDH' });
    }

    // the catalogue browser inserts cells into the last notebook the member used
    let lastNotebook: INotebookLike | null = null;
    let browser: CatalogueBrowser | null = null;
    const noteCurrent = (w: Widget | null) => {
      if (isNotebook(w)) {
        lastNotebook = w;
      }
      browser?.updateInsertState();
    };
    noteCurrent(app.shell.currentWidget);
    app.shell.currentChanged?.connect((_, args) => noteCurrent(args.newValue));
    // reopened where it was after a reload (the layout restorer)
    const tracker = new WidgetTracker<CatalogueBrowser>({ namespace: 'jupyterlab-hdh-catalogue' });
    if (restorer) {
      void restorer.restore(tracker, { command: BROWSE_CATALOGUE, name: () => 'catalogue' });
    }
    app.commands.addCommand(BROWSE_CATALOGUE, {
      label: __('HDH: Browse the catalogue'),
      caption: __("Search the catalogue, read a dataset's page and insert hdh.read cells"),
      icon: hdhIcon,
      execute: args => {
        if (!browser || browser.isDisposed) {
          browser = new CatalogueBrowser(
            () => (isNotebook(lastNotebook) ? lastNotebook : null),
            w => app.shell.activateById(w.id),
            trans
          );
          browser.title.icon = hdhIcon;
          void tracker.add(browser);
        }
        if (!browser.isAttached) {
          app.shell.add(browser, 'main');
        }
        app.shell.activateById(browser.id);
        const dataset = typeof args.dataset === 'string' ? args.dataset : '';
        if (dataset) {
          const table = typeof args.table === 'string' && args.table ? args.table : undefined;
          void browser.openDataset(dataset, table);
        }
        return browser;
      }
    });
    if (palette) {
      palette.addItem({ command: BROWSE_CATALOGUE, category: 'HDH' });
    }

    // the code audit view: the project's audited code (its leads; others read why not)
    let audit: AuditView | null = null;
    const auditTracker = new WidgetTracker<AuditView>({ namespace: 'jupyterlab-hdh-audit' });
    if (restorer) {
      void restorer.restore(auditTracker, { command: AUDIT_CODE, name: () => 'audit' });
    }
    app.commands.addCommand(AUDIT_CODE, {
      label: __('HDH: Audited code'),
      caption: __("The project's audited code: cells, terminal lines, saved files, template runs"),
      icon: hdhIcon,
      execute: args => {
        if (!audit || audit.isDisposed) {
          audit = new AuditView(trans);
          audit.title.icon = hdhIcon;
          void auditTracker.add(audit);
        }
        if (!audit.isAttached) {
          app.shell.add(audit, 'main');
        }
        app.shell.activateById(audit.id);
        if (typeof args.project !== 'string') {
          audit.useSource(null); // this sandbox's project (the review widget passes one)
          void audit.load();
        }
        return audit;
      }
    });
    // administrators: every project's audited code, read from the control plane
    app.commands.addCommand(AUDIT_EVERY_PROJECT, {
      label: __('HDH: Audited code of every project'),
      caption: __("Every project's audited code, with filters (administrators)"),
      icon: hdhIcon,
      execute: async () => {
        const view = (await app.commands.execute(AUDIT_CODE, { project: '' })) as AuditView;
        const session = pageSession(prefix);
        const state = await session.get();
        const client = state.kind === 'ok' ? clientFor(session, state.session) : null;
        view.useSource({
          project: '',
          page: query =>
            client
              ? client.auditAll(query)
              : Promise.reject(new HdhApiError(401, state.kind === 'ok' ? '' : state.detail))
        });
        void view.load();
        return view;
      }
    });
    if (palette) {
      palette.addItem({ command: AUDIT_CODE, category: 'HDH' });
      palette.addItem({ command: AUDIT_EVERY_PROJECT, category: 'HDH' });
    }

    // the review widget: the browser talks to the control plane directly (never the sandbox)
    let review: ReviewView | null = null;
    const reviewTracker = new WidgetTracker<ReviewView>({ namespace: 'jupyterlab-hdh-review' });
    if (restorer && !reviewWorkspace) {
      void restorer.restore(reviewTracker, { command: REVIEW_REQUESTS, name: () => 'review' });
    }
    app.commands.addCommand(REVIEW_REQUESTS, {
      label: __('HDH: Review export requests'),
      caption: __('The queue of export requests to review: checks, safe renderings, votes'),
      icon: hdhIcon,
      execute: () => {
        if (!review || review.isDisposed) {
          review = new ReviewView(prefix, trans, undefined, (project, client) => {
            // the audited code behind a request, read from the control plane (not the sandbox)
            void app.commands.execute(AUDIT_CODE, { project }).then(() => {
              if (audit && !audit.isDisposed) {
                audit.useSource({ project, page: query => client.auditCode(project, query) });
                void audit.load();
              }
            });
          });
          review.title.icon = hdhIcon;
          void reviewTracker.add(review);
        }
        if (!review.isAttached) {
          app.shell.add(review, 'main');
        }
        app.shell.activateById(review.id);
        void review.load();
        return review;
      }
    });
    if (palette) {
      palette.addItem({ command: REVIEW_REQUESTS, category: 'HDH' });
    }
    if (reviewWorkspace) {
      void app.restored.then(() => app.commands.execute(REVIEW_REQUESTS));
    }

    app.commands.addCommand(CommandIDs.addToExport, {
      label: __('Add to export request…'),
      caption: __('Add the selected files to an export request (the airlock)'),
      icon: hdhIcon,
      isVisible: () => !reviewWorkspace && selectedFiles().length > 0,
      execute: async () => {
        const paths = selectedFiles();
        if (paths.length === 0) {
          return;
        }
        const id = await addFilesInteractively(paths, trans);
        if (id !== null) {
          app.shell.activateById(panel.id);
          await panel.exports?.reload();
        }
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.addToExport,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 20
    });

    /** The selected files (not folders) of the current file browser, relative to its root. */
    function selectedFiles(): string[] {
      const browser = browsers.tracker.currentWidget;
      if (!browser) {
        return [];
      }
      return Array.from(browser.selectedItems())
        .filter(item => item.type !== 'directory')
        .map(item => item.path);
    }
  }
};

export default [plugin, templatesPlugin];
