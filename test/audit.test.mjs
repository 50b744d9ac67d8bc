// Unit tests of the code audit view's model (src/audit-model.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  AUDIT_PAGE,
  auditQuery,
  chainBanner,
  groupEvents,
  parseCodePage
} from '../lib/audit-model.js';
import { englishTrans } from '../lib/catalogue-model.js';

const ev = (seq, user, extra = {}) => ({
  seq,
  ts: '2026-12-04T10:00:00.000000+00:00',
  user,
  project: 'demo',
  kind: 'cell',
  notebook: null,
  kernel: 'abcdef0123456789',
  terminal: null,
  code: `print(${seq})`,
  verified: true,
  ...extra
});

describe('parseCodePage', () => {
  it('reads events and the chain, skipping malformed rows', () => {
    const p = parseCodePage({
      project: 'demo',
      events: [ev(3, 'alice'), { seq: 'x' }, ev(2, 'bob', { kind: 'kernel' }), 'junk'],
      next_cursor: 3,
      chain: { ok: true, verified_to: 9, broken_seq: null, reason: '' }
    });
    assert.equal(p.events.length, 1);
    assert.equal(p.events[0].code, 'print(3)');
    assert.equal(p.nextCursor, 3);
    assert.deepEqual(p.chain, { ok: true, verifiedTo: 9, brokenSeq: null, reason: '' });
  });

  it('takes an unreadable chain for a broken one', () => {
    assert.equal(parseCodePage({}).chain.ok, false);
    assert.deepEqual(parseCodePage(null).events, []);
  });
});

describe('auditQuery', () => {
  it('keeps the filters that are set, the page size and the cursor', () => {
    assert.deepEqual(auditQuery({ user: ' bob ', kind: '', since: '2026-12-01' }, 42), {
      user: 'bob',
      since: '2026-12-01',
      limit: String(AUDIT_PAGE),
      cursor: '42'
    });
    assert.deepEqual(auditQuery({}, null), { limit: String(AUDIT_PAGE) });
  });
});

describe('groupEvents', () => {
  it('groups by person then place, newest first', () => {
    const groups = groupEvents(
      [
        ev(1, 'alice'),
        ev(5, 'bob', { kind: 'terminal', kernel: '', terminal: '1', code: 'ls\r' }),
        ev(4, 'alice', { kind: 'save', notebook: 'a.ipynb' }),
        ev(3, 'alice')
      ],
      englishTrans
    );
    assert.deepEqual(
      groups.map(g => [g.user, g.places.map(p => [p.place, p.events.map(e => e.seq)])]),
      [
        ['bob', [['Terminal 1', [5]]]],
        [
          'alice',
          [
            ['a.ipynb', [4]],
            ['Kernel abcdef01', [3, 1]]
          ]
        ]
      ]
    );
  });
});

describe('groupEvents of every project', () => {
  it('names each place with its project, so two projects’ notebooks stay apart', () => {
    const groups = groupEvents(
      [
        ev(2, 'alice', { notebook: 'a.ipynb', project: 'cohort' }),
        ev(1, 'alice', { notebook: 'a.ipynb' })
      ],
      englishTrans,
      true
    );
    assert.deepEqual(
      groups[0].places.map(p => p.place),
      ['cohort · a.ipynb', 'demo · a.ipynb']
    );
    assert.equal(
      groupEvents([ev(1, 'alice', { notebook: 'a.ipynb' })], englishTrans)[0].places[0].place,
      'a.ipynb'
    );
  });
});

describe('chainBanner', () => {
  it('says verified up to N, or broken at N with the reason', () => {
    const ok = chainBanner({ ok: true, verifiedTo: 12, brokenSeq: null, reason: '' }, englishTrans);
    assert.equal(ok.ok, true);
    assert.match(ok.text, /verified.*#12/);
    const broken = chainBanner(
      { ok: false, verifiedTo: 6, brokenSeq: 7, reason: 'content was altered' },
      englishTrans
    );
    assert.equal(broken.ok, false);
    assert.match(broken.text, /broken at #7.*content was altered/);
  });
});
