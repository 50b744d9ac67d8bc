/**
 * Export requests (the airlock) from the researcher's side: list, create, add files,
 * submit, withdraw. The control plane owns every rule (states, checks, limits); this module
 * only relays choices to `/hdh/egress/requests*` and reports its answers.
 */

import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { HdhApiError, hdhPath, postJSON, requestAPI } from './api';
import { ITrans, englishTrans } from './catalogue-model';
import { h } from './dom';
import {
  EDITABLE_STATES,
  FILE_ROLES,
  FileRole,
  IExportRequest,
  IFileContext,
  contextFrom,
  parseRequest,
  parseRequests
} from './model';

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

export async function createRequest(title: string): Promise<IExportRequest> {
  const created = parseRequest(await postJSON('egress/requests', { title }));
  if (created === null) {
    throw new HdhApiError(502, 'The server did not return the new request.');
  }
  return created;
}

export interface IFileChoice {
  role: FileRole;
  context: IFileContext;
  controls: string;
}

export async function addFile(requestId: string, path: string, choice: IFileChoice): Promise<void> {
  await postJSON(`egress/requests/${hdhPath(requestId)}/files`, { path, ...choice });
}

export async function submitRequest(requestId: string): Promise<void> {
  await postJSON(`egress/requests/${hdhPath(requestId)}/submit`);
}

export async function withdrawRequest(requestId: string): Promise<void> {
  await postJSON(`egress/requests/${hdhPath(requestId)}/withdraw`);
}

/** Shows why a call failed: the server's `detail`, or "not available yet". */
export async function reportError(
  title: string,
  error: unknown,
  trans: ITrans = englishTrans
): Promise<void> {
  let message: string;
  if (error instanceof HdhApiError) {
    const notAvailable = trans.__(
      'Export requests are not available yet in this sandbox (the airlock service did not answer).'
    );
    message = error.notAvailable ? `${notAvailable}\n\n${error.detail}` : error.detail;
  } else {
    message = String(error);
  }
  await showErrorMessage(title, message, [Dialog.okButton({ label: trans.__('Dismiss') })]);
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
    drafts = (await listRequests()).filter(r => EDITABLE_STATES.has(r.state));
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
  try {
    let id = choice.request;
    if (id === NEW_REQUEST) {
      id = (await createRequest(choice.title || paths[0])).id;
    }
    for (const path of paths) {
      await addFile(id, path, {
        role: choice.role,
        context: choice.context,
        controls: choice.controls
      });
    }
    return id;
  } catch (error) {
    await reportError(__('Could not add the file to the export request'), error, trans);
    return null;
  }
}
