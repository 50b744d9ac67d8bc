/**
 * Export requests (the airlock) from the researcher's side: list, create, add files,
 * submit, withdraw. The control plane owns every rule (states, checks, limits); this module
 * only relays choices to `/hdh/egress/requests*` and reports its answers: progress in a
 * JupyterLab notification ("Snapshotting 2 of 5 files…", "Submitting…"), a refusal in a
 * dialog with the readable line of `format.ts`. A creation, submission or withdrawal already
 * on its way is not sent twice.
 */

import { Dialog, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { HdhApiError, apiLanguage, hdhPath, postJSON, requestAPI } from './api';
import { ITrans, englishTrans } from './catalogue-model';
import { h } from './dom';
import { errorText } from './format';
import {
  FILE_ROLES,
  FileRole,
  IExportRequest,
  IFileContext,
  contextFrom,
  parseRequest,
  parseRequests
} from './model';
import { EDITABLE } from './states';

/** How many requests of a list are fetched in full (files, checks, comments). */
export const DETAILED_MAX = 20;

export async function getRequest(requestId: string): Promise<IExportRequest> {
  const r = parseRequest(await requestAPI(`egress/requests/${hdhPath(requestId)}`));
  if (r === null) {
    throw new HdhApiError(502, `The server did not return request ${requestId}.`);
  }
  return r;
}

/**
 * This project's requests, newest first. A list view gives each request's file count only:
 * the newest ones are fetched in full; one that cannot be (route missing, gone) stays a
 * summary.
 */
export async function listRequests(): Promise<IExportRequest[]> {
  const summaries = parseRequests(await requestAPI('egress/requests'));
  return Promise.all(
    summaries.map(async (r, i) => {
      if (r.files !== null || r.fileCount === 0 || i >= DETAILED_MAX) {
        return r;
      }
      try {
        return await getRequest(r.id);
      } catch {
        return r;
      }
    })
  );
}

/** Actions on their way, by key: a second click joins the first instead of sending again. */
const inFlight = new Map<string, Promise<unknown>>();

function once<T>(key: string, action: () => Promise<T>): Promise<T> {
  const pending = inFlight.get(key);
  if (pending) {
    return pending as Promise<T>;
  }
  const p = action().finally(() => inFlight.delete(key));
  inFlight.set(key, p);
  return p;
}

/**
 * Runs `action` under an in-progress notification saying `pending`; on success the
 * notification says `done` (and closes by itself), on failure it goes (the caller shows
 * why in a dialog).
 */
async function withProgress<T>(
  pending: string,
  done: string,
  action: () => Promise<T>
): Promise<T> {
  const id = Notification.emit(pending, 'in-progress', { autoClose: false });
  try {
    const out = await action();
    Notification.update({ id, message: done, type: 'success', autoClose: 5000 });
    return out;
  } catch (error) {
    Notification.dismiss(id);
    throw error;
  }
}

export function createRequest(title: string): Promise<IExportRequest> {
  return once(`create:${title}`, async () => {
    const created = parseRequest(await postJSON('egress/requests', { title }));
    if (created === null) {
      throw new HdhApiError(502, 'The server did not return the new request.');
    }
    return created;
  });
}

export interface IFileChoice {
  role: FileRole;
  context: IFileContext;
  controls: string;
}

export async function addFile(requestId: string, path: string, choice: IFileChoice): Promise<void> {
  await postJSON(`egress/requests/${hdhPath(requestId)}/files`, { path, ...choice });
}

/** Submits a request (its checks run then), its progress in a notification; once at a time. */
export function submitRequest(requestId: string, trans: ITrans = apiLanguage()): Promise<void> {
  return once(`submit:${requestId}`, () =>
    withProgress(
      trans.__('Submitting export request #%1: its checks are running…', requestId),
      trans.__('Export request #%1 submitted.', requestId),
      () => postJSON(`egress/requests/${hdhPath(requestId)}/submit`)
    ).then(() => undefined)
  );
}

export function withdrawRequest(requestId: string, trans: ITrans = apiLanguage()): Promise<void> {
  return once(`withdraw:${requestId}`, () =>
    withProgress(
      trans.__('Withdrawing export request #%1…', requestId),
      trans.__('Export request #%1 withdrawn.', requestId),
      () => postJSON(`egress/requests/${hdhPath(requestId)}/withdraw`)
    ).then(() => undefined)
  );
}

/** Shows why a call failed, in a dialog: its readable line (`format.ts`). */
export async function reportError(
  title: string,
  error: unknown,
  trans: ITrans = englishTrans
): Promise<void> {
  await showErrorMessage(title, errorText(error, trans), [
    Dialog.okButton({ label: trans.__('Dismiss') })
  ]);
}

const NEW_REQUEST = '__new__';

interface IAddChoice extends IFileChoice {
  request: string; // an id, or NEW_REQUEST
  title: string;
}

/** The body of the "Add to export request" dialog: role, request, context and controls. */
class AddFileForm extends Widget {
  constructor(paths: string[], drafts: IExportRequest[], trans: ITrans = englishTrans) {
    super({ node: h('form', { class: 'jp-hdh-addForm' }) });
    const __ = trans.__.bind(trans);
    this._role = h('select', { name: 'role', 'aria-label': __('Role') });
    for (const role of FILE_ROLES) {
      this._role.appendChild(h('option', { value: role }, role));
    }
    this._request = h('select', { name: 'request', 'aria-label': __('Request') });
    for (const r of drafts) {
      this._request.appendChild(
        h('option', { value: r.id }, `${r.title || __('(untitled)')} — #${r.id}`)
      );
    }
    this._request.appendChild(h('option', { value: NEW_REQUEST }, __('New request…')));
    this._title = h('input', {
      name: 'title',
      type: 'text',
      maxlength: '200',
      placeholder: __('Title of the new request')
    });
    this._population = h('input', {
      name: 'population',
      type: 'text',
      placeholder: __('e.g. patients hospitalised in 2023')
    });
    this._variables = h('input', {
      name: 'variables',
      type: 'text',
      placeholder: __('e.g. age_group, sex (comma-separated)')
    });
    this._dof = h('input', { name: 'degrees_of_freedom', type: 'number', min: '0', step: '1' });
    this._description = h('textarea', {
      name: 'description',
      rows: '2',
      placeholder: __('What the file shows')
    });
    this._controls = h('textarea', {
      name: 'controls',
      rows: '2',
      placeholder: __('Disclosure controls applied (suppression, rounding…)')
    });
    const titleRow = h('label', { class: 'jp-hdh-field' }, __('New request title'), this._title);
    const syncTitle = () =>
      titleRow.classList.toggle('jp-mod-hidden', this._request.value !== NEW_REQUEST);
    this._request.addEventListener('change', syncTitle);
    syncTitle();
    this.node.append(
      h(
        'p',
        { class: 'jp-hdh-muted' },
        paths.length === 1 ? paths[0] : trans._n('%1 file', '%1 files', paths.length, paths.length)
      ),
      h('label', { class: 'jp-hdh-field' }, __('Role'), this._role),
      h('label', { class: 'jp-hdh-field' }, __('Request'), this._request),
      titleRow,
      h('label', { class: 'jp-hdh-field' }, __('Population'), this._population),
      h('label', { class: 'jp-hdh-field' }, __('Variables'), this._variables),
      h('label', { class: 'jp-hdh-field' }, __('Degrees of freedom'), this._dof),
      h('label', { class: 'jp-hdh-field' }, __('Description'), this._description),
      h('label', { class: 'jp-hdh-field' }, __('Controls'), this._controls)
    );
    this.node.addEventListener('submit', e => e.preventDefault());
  }

  getValue(): IAddChoice {
    return {
      role: this._role.value as FileRole,
      request: this._request.value,
      title: this._title.value.trim(),
      context: contextFrom({
        population: this._population.value,
        variables: this._variables.value,
        dof: this._dof.value,
        description: this._description.value
      }),
      controls: this._controls.value
    };
  }

  private _role: HTMLSelectElement;
  private _request: HTMLSelectElement;
  private _title: HTMLInputElement;
  private _population: HTMLInputElement;
  private _variables: HTMLInputElement;
  private _dof: HTMLInputElement;
  private _description: HTMLTextAreaElement;
  private _controls: HTMLTextAreaElement;
}

/**
 * Asks role and request for `paths` (relative to the workspace), then adds them.
 * Returns the request id they went to, or null when cancelled or failed (already reported).
 */
export async function addFilesInteractively(
  paths: string[],
  trans: ITrans = englishTrans
): Promise<string | null> {
  const __ = trans.__.bind(trans);
  let drafts: IExportRequest[];
  try {
    drafts = (await listRequests()).filter(r => EDITABLE.has(r.state));
  } catch (error) {
    await reportError(__('Export requests'), error, trans);
    return null;
  }
  let result;
  try {
    result = await showDialog({
      title: __('Add to export request'),
      body: new AddFileForm(paths, drafts, trans),
      buttons: [
        Dialog.cancelButton({ label: __('Cancel') }),
        Dialog.okButton({ label: __('Add') })
      ],
      focusNodeSelector: 'select'
    });
  } catch (error) {
    await reportError(__('Add to export request'), error, trans); // e.g. degrees of freedom not a count
    return null;
  }
  if (!result.button.accept || result.value === null) {
    return null;
  }
  const choice = result.value as IAddChoice;
  const total = paths.length;
  let added = 0;
  // each file is snapshotted by the control plane as it is added: one step per file
  const note = Notification.emit(
    choice.request === NEW_REQUEST
      ? __('Creating the export request…')
      : __('Snapshotting %1 of %2 files…', 1, total),
    'in-progress',
    { autoClose: false }
  );
  try {
    let id = choice.request;
    if (id === NEW_REQUEST) {
      id = (await createRequest(choice.title || paths[0])).id;
    }
    for (const path of paths) {
      Notification.update({
        id: note,
        message: __('Snapshotting %1 of %2 files…', added + 1, total),
        type: 'in-progress',
        autoClose: false
      });
      await addFile(id, path, {
        role: choice.role,
        context: choice.context,
        controls: choice.controls
      });
      added += 1;
    }
    Notification.update({
      id: note,
      message: trans._n(
        '%1 file added to export request #%2.',
        '%1 files added to export request #%2.',
        total,
        total,
        id
      ),
      type: 'success',
      autoClose: 5000
    });
    return id;
  } catch (error) {
    Notification.dismiss(note);
    const partial =
      added > 0 ? ` ${__('%1 of %2 files were added before this failure.', added, total)}` : '';
    await reportError(
      __('Could not add the file to the export request'),
      partial ? new Error(errorText(error, trans) + partial) : error,
      trans
    );
    return null;
  }
}
