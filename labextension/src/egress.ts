/**
 * Export requests (the airlock) from the researcher's side: list, create, add files,
 * submit, withdraw. The control plane owns every rule (states, checks, limits); this module
 * only relays choices to `/hdh/egress/requests*` and reports its answers.
 */

import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { HdhApiError, hdhPath, postJSON, requestAPI } from './api';
import { h } from './dom';
import { FILE_ROLES, FileRole, IExportRequest, parseRequest, parseRequests } from './model';

export const NOT_AVAILABLE =
  'Export requests are not available yet in this sandbox (the airlock service did not answer).';

export async function listRequests(): Promise<IExportRequest[]> {
  return parseRequests(await requestAPI('egress/requests'));
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
  context: string;
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
export async function reportError(title: string, error: unknown): Promise<void> {
  let message: string;
  if (error instanceof HdhApiError) {
    message = error.notAvailable ? `${NOT_AVAILABLE}\n\n${error.detail}` : error.detail;
  } else {
    message = String(error);
  }
  await showErrorMessage(title, message);
}

const NEW_REQUEST = '__new__';

interface IAddChoice extends IFileChoice {
  request: string; // an id, or NEW_REQUEST
  title: string;
}

/** The body of the "Add to export request" dialog: role, request, context and controls. */
class AddFileForm extends Widget {
  constructor(paths: string[], drafts: IExportRequest[]) {
    super({ node: h('form', { class: 'jp-hdh-addForm' }) });
    this._role = h('select', { name: 'role', 'aria-label': 'Role' });
    for (const role of FILE_ROLES) {
      this._role.appendChild(h('option', { value: role }, role));
    }
    this._request = h('select', { name: 'request', 'aria-label': 'Request' });
    for (const r of drafts) {
      this._request.appendChild(
        h('option', { value: r.id }, `${r.title || '(untitled)'} — ${r.id}`)
      );
    }
    this._request.appendChild(h('option', { value: NEW_REQUEST }, 'New request…'));
    this._title = h('input', {
      name: 'title',
      type: 'text',
      placeholder: 'Title of the new request'
    });
    this._context = h('textarea', {
      name: 'context',
      rows: '3',
      placeholder: 'Population, variables, degrees of freedom…'
    });
    this._controls = h('textarea', {
      name: 'controls',
      rows: '2',
      placeholder: 'Disclosure controls applied (suppression, rounding…)'
    });
    const titleRow = h('label', { class: 'jp-hdh-field' }, 'New request title', this._title);
    const syncTitle = () =>
      titleRow.classList.toggle('jp-mod-hidden', this._request.value !== NEW_REQUEST);
    this._request.addEventListener('change', syncTitle);
    syncTitle();
    this.node.append(
      h('p', { class: 'jp-hdh-muted' }, paths.length === 1 ? paths[0] : `${paths.length} files`),
      h('label', { class: 'jp-hdh-field' }, 'Role', this._role),
      h('label', { class: 'jp-hdh-field' }, 'Request', this._request),
      titleRow,
      h('label', { class: 'jp-hdh-field' }, 'Context', this._context),
      h('label', { class: 'jp-hdh-field' }, 'Controls', this._controls)
    );
    this.node.addEventListener('submit', e => e.preventDefault());
  }

  getValue(): IAddChoice {
    return {
      role: this._role.value as FileRole,
      request: this._request.value,
      title: this._title.value.trim(),
      context: this._context.value,
      controls: this._controls.value
    };
  }

  private _role: HTMLSelectElement;
  private _request: HTMLSelectElement;
  private _title: HTMLInputElement;
  private _context: HTMLTextAreaElement;
  private _controls: HTMLTextAreaElement;
}

/**
 * Asks role and request for `paths` (relative to the workspace), then adds them.
 * Returns the request id they went to, or null when cancelled or failed (already reported).
 */
export async function addFilesInteractively(paths: string[]): Promise<string | null> {
  let drafts: IExportRequest[];
  try {
    drafts = (await listRequests()).filter(r => r.state === 'draft');
  } catch (error) {
    await reportError('Export requests', error);
    return null;
  }
  const result = await showDialog({
    title: 'Add to export request',
    body: new AddFileForm(paths, drafts),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Add' })],
    focusNodeSelector: 'select'
  });
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
    await reportError('Could not add the file to the export request', error);
    return null;
  }
}
