// Unit tests of the export-request state sets (src/states.ts): the membership each widget
// relies on, and that they mirror the workflow's own table (jupyterlab_hdh/egress/states.py).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { URL } from 'node:url';

import { AWAITING_REVIEWER, EDITABLE, FINAL, STATES, VOTING, WITHDRAWABLE } from '../lib/states.js';

const sorted = set => [...set].sort();
const PY = readFileSync(new URL('../jupyterlab_hdh/egress/states.py', import.meta.url), 'utf8');

/** The states a `NAME: Final = frozenset({A, B})` of states.py holds, as their text. */
function pySet(name) {
  const m = new RegExp(String.raw`^${name}: Final = frozenset\(\{([^}]*)\}\)`, 'm').exec(PY);
  assert.ok(m, `${name} not found in states.py`);
  return m[1]
    .split(',')
    .map(s => s.trim().toLowerCase())
    .filter(s => s)
    .sort();
}

/** The (from, to) steps of states.py's TRANSITIONS, as text. */
function pyTransitions() {
  const table = /^TRANSITIONS: .*?^\}/ms.exec(PY);
  assert.ok(table, 'TRANSITIONS not found in states.py');
  return [...table[0].matchAll(/\(([A-Z_]+), ([A-Z_]+)\):/g)].map(m => [
    m[1].toLowerCase(),
    m[2].toLowerCase()
  ]);
}

describe('the state sets', () => {
  it('hold what each widget relies on', () => {
    assert.deepEqual(sorted(VOTING), ['partially_reviewed', 'submitted']);
    assert.deepEqual(sorted(FINAL), ['rejected', 'released', 'withdrawn']);
    assert.deepEqual(sorted(EDITABLE), ['draft', 'returned']);
    assert.deepEqual(sorted(AWAITING_REVIEWER), [
      'approved',
      'partially_reviewed',
      'releasing',
      'reviewed',
      'submitted'
    ]);
    assert.deepEqual(sorted(WITHDRAWABLE), [
      'draft',
      'partially_reviewed',
      'returned',
      'reviewed',
      'submitted'
    ]);
  });

  it('mirror jupyterlab_hdh/egress/states.py', () => {
    const all = [...PY.matchAll(/^ {4}[A-Z_]+ = "([a-z_]+)"$/gm)].map(m => m[1]);
    assert.deepEqual([...STATES], all);
    assert.deepEqual(sorted(FINAL), pySet('FINAL'));
    assert.deepEqual(sorted(EDITABLE), pySet('EDITABLE'));
    assert.deepEqual(sorted(VOTING), pySet('VOTING'));
    const steps = pyTransitions();
    assert.ok(steps.length > 10, 'TRANSITIONS read');
    const toWithdrawn = steps.filter(([, to]) => to === 'withdrawn').map(([from]) => from);
    assert.deepEqual(sorted(WITHDRAWABLE), toWithdrawn.sort());
    // UNDER_REVIEW (every state but draft and withdrawn) less the final ones and returned
    const underReview = STATES.filter(s => s !== 'draft' && s !== 'withdrawn');
    assert.deepEqual(
      sorted(AWAITING_REVIEWER),
      underReview.filter(s => !FINAL.has(s) && s !== 'returned').sort()
    );
    assert.match(PY, /^UNDER_REVIEW: Final = frozenset\(set\(STATES\) - \{DRAFT, WITHDRAWN\}\)/m);
    // every state leaves or is final, and only through states the sets know
    for (const [from, to] of steps) {
      assert.ok(STATES.includes(from) && STATES.includes(to), `${from} → ${to}`);
      assert.ok(!FINAL.has(from), `${from} is final`);
    }
  });
});
