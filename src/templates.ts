/**
 * Template studies in the launcher: one card per template (`GET /hdh/templates`). A click
 * copies the template into the workspace (`POST /hdh/templates/<name>/copy`), opens the
 * copy and runs all its cells in the project's kernel, like any cell the member runs
 * (the guard audits each one). The launch's steps show in a notification (copying, opening,
 * starting the kernel, running); a card already launching does not launch twice; a refusal
 * is a dialog with the readable line of `format.ts`. This plugin also sets the language
 * every `/hdh/*` refusal is worded in (`useApiLanguage`).
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, Notification, SemanticCommand, showErrorMessage } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { ILauncher } from '@jupyterlab/launcher';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { HdhApiError, hdhPath, postJSON, requestAPI, useApiLanguage } from './api';
import { ITrans, englishTrans } from './catalogue-model';
import { errorText } from './format';
import { ITemplate, parseTemplates, templateCaption } from './model';

export const TEMPLATES_PLUGIN_ID = 'jupyterlab-hdh:templates';
export const RUN_TEMPLATE = 'hdh:run-template';
export const TEMPLATE_CATEGORY = 'HDH templates';

// A notebook page with a play mark; no style attribute (Content-Security-Policy).
export const templateIcon = new LabIcon({
  name: 'jupyterlab-hdh:template',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M6 2h9l5 5v15H6zm8 1.5V8h4.5zM10 11v8l6-4z"/>' +
    '</g></svg>'
});

/**
 * Copies template `name` into the workspace, opens it and runs all its cells; `step` hears
 * each stage's description as it starts.
 */
export async function runTemplate(
  app: JupyterFrontEnd,
  docManager: IDocumentManager,
  name: string,
  trans: ITrans = englishTrans,
  step: (what: string) => void = () => undefined
): Promise<string> {
  step(trans.__('Copying the template into your workspace…'));
  const { path } = await postJSON<{ path: string }>(hdhPath('templates', name, 'copy'));
  step(trans.__('Opening %1…', path));
  const widget = docManager.openOrReveal(path);
  if (!widget) {
    throw new Error(trans.__('%1 could not be opened.', path));
  }
  await widget.context.ready;
  step(trans.__('Starting the kernel of %1…', path));
  await widget.context.sessionContext.ready;
  app.shell.activateById(widget.id);
  step(trans.__('Running the cells of %1…', path));
  await app.commands.execute('notebook:run-all-cells', { [SemanticCommand.WIDGET]: widget.id });
  return path;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: TEMPLATES_PLUGIN_ID,
  description: 'HDH template studies in the launcher: copy one into the workspace and run it.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ILauncher, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    launcher: ILauncher | null,
    translator: ITranslator | null
  ) => {
    const trans: ITrans = translator ? translator.load('jupyterlab_hdh') : englishTrans;
    const __ = trans.__.bind(trans);
    useApiLanguage(trans); // every widget's refusals in the display language
    const byName = new Map<string, ITemplate>();
    const launching = new Set<string>();
    const of = (args: { name?: unknown }) => byName.get(String(args.name ?? ''));

    app.commands.addCommand(RUN_TEMPLATE, {
      label: args => of(args)?.title ?? __('Run a template study'),
      caption: args => {
        const t = of(args);
        return t
          ? templateCaption(t, trans)
          : __('Copy a template study into the workspace and run it');
      },
      icon: templateIcon,
      isEnabled: args => !launching.has(String(args.name ?? '')),
      execute: async args => {
        const t = of(args);
        if (!t || launching.has(t.name)) {
          return; // a second click while it launches: nothing more
        }
        launching.add(t.name);
        app.commands.notifyCommandChanged(RUN_TEMPLATE);
        const note = Notification.emit(__('Launching “%1”…', t.title), 'in-progress', {
          autoClose: false
        });
        try {
          const path = await runTemplate(app, docManager, t.name, trans, what =>
            Notification.update({ id: note, message: what, type: 'in-progress', autoClose: false })
          );
          Notification.update({
            id: note,
            message: __('“%1” copied to %2; its cells have run.', t.title, path),
            type: 'success',
            autoClose: 5000
          });
        } catch (error) {
          Notification.dismiss(note);
          await showErrorMessage(
            __('The template “%1” could not be run', t.title),
            errorText(error, trans),
            [Dialog.okButton({ label: __('Dismiss') })]
          );
        } finally {
          launching.delete(t.name);
          app.commands.notifyCommandChanged(RUN_TEMPLATE);
        }
      }
    });
    if (!launcher) {
      return;
    }
    requestAPI('templates')
      .then(body => {
        parseTemplates(body).forEach((t, rank) => {
          byName.set(t.name, t);
          launcher.add({
            command: RUN_TEMPLATE,
            args: { name: t.name },
            category: __('HDH templates'),
            rank
          });
        });
      })
      .catch((error: unknown) => {
        // an older sandbox without the route: no cards, the rest of the extension works
        if (!(error instanceof HdhApiError && error.notAvailable)) {
          console.warn('HDH: the template studies could not be listed:', errorText(error, trans));
        }
      });
  }
};

export default plugin;
