/**
 * The export-request states the widgets group by: they mirror
 * `jupyterlab_hdh/egress/states.py` (its `STATES`, `FINAL`, `EDITABLE`, `VOTING` and the
 * transitions to `withdrawn`), which owns the workflow; the control plane has the last
 * word on every step, these only decide what a widget offers. `test/states.test.mjs`
 * reads states.py and fails when they drift apart. Pure data, no import.
 */

/** Every state (states.py `STATES`). */
export const STATES: readonly string[] = [
  'draft',
  'submitted',
  'partially_reviewed',
  'reviewed',
  'approved',
  'returned',
  'rejected',
  'releasing',
  'released',
  'withdrawn'
];

/** Final states: nothing happens after them (states.py `FINAL`). */
export const FINAL: ReadonlySet<string> = new Set(['rejected', 'released', 'withdrawn']);

/** States in which the requester may add or replace files and (re)submit (`EDITABLE`). */
export const EDITABLE: ReadonlySet<string> = new Set(['draft', 'returned']);

/** States in which reviewers vote (states.py `VOTING`). */
export const VOTING: ReadonlySet<string> = new Set(['submitted', 'partially_reviewed']);

/**
 * States in which a request waits on a reviewer (a vote, a decision, a release): states.py's
 * `UNDER_REVIEW` less the final states and `returned` (back with its author).
 */
export const AWAITING_REVIEWER: ReadonlySet<string> = new Set([
  'submitted',
  'partially_reviewed',
  'reviewed',
  'approved',
  'releasing'
]);

/** States from which the requester may withdraw (states.py's transitions to `withdrawn`). */
export const WITHDRAWABLE: ReadonlySet<string> = new Set([
  'draft',
  'submitted',
  'partially_reviewed',
  'reviewed',
  'returned'
]);
