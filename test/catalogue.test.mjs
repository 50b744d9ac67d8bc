// Unit tests of the catalogue browser's readers and cell builder (src/catalogue-model.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ENGINES,
  englishTrans,
  parseAccessRequest,
  parseDatasetPage,
  parseSearch,
  parseTable,
  readCellSource,
  searchQuery
} from '../lib/catalogue-model.js';

describe('searchQuery', () => {
  it('keeps the words and only the filters that are set', () => {
    assert.deepEqual(searchQuery('  décès ', { theme: 'HEAL', synthetic: '', from: '2019' }), {
      q: 'décès',
      theme: 'HEAL',
      from: '2019'
    });
    assert.deepEqual(searchQuery('', {}), {});
  });
});

describe('parseSearch', () => {
  it('reads hits and facets, skipping malformed rows', () => {
    const r = parseSearch({
      query: 'x',
      results: [
        { kind: 'table', dataset: 'demo-snds', version: 'v1', table: 'ER_PRS_F', title: 'T' },
        { kind: 'dataset' },
        'junk'
      ],
      facets: { theme: ['HEAL'], coding_system: ['CIM-10'], synthetic: [true], years: [2019, 2021] }
    });
    assert.equal(r.hits.length, 1);
    assert.equal(r.hits[0].table, 'ER_PRS_F');
    assert.deepEqual(r.facets.years, [2019, 2021]);
    assert.deepEqual(r.facets.accessRights, []);
  });
  it('survives anything', () => {
    const r = parseSearch(null);
    assert.deepEqual(r.hits, []);
    assert.equal(r.facets.years, null);
  });
});

describe('parseDatasetPage', () => {
  it('reads the record, the quality report, the versions and the access', () => {
    const p = parseDatasetPage({
      dataset: {
        name: 'demo-snds',
        version: 'v1',
        title: 'Démo',
        description: 'd',
        records: 12,
        quality: { passed: 3, failed: 1, summary: 's' },
        tables: [
          { name: 'IR_BEN_R', rows: 5, columns: [{ name: 'BEN_NIR_PSA', primary_key: true }] }
        ],
        versions: [{ version: 'v1', status: 'current', created_at: '2026-01-02T03:04:05Z' }]
      },
      quality: {
        checks: [
          { check_id: 'not_null', status: 'fail', table: 'T', column: 'C', violated: 2, pct: 0.5 }
        ]
      },
      access: { state: 'not_permitted', leads: [{ name: 'alice' }], how: 'Ask alice.' },
      change_url: '/services/hdh/ui/projects/demo/datasets'
    });
    assert.equal(p.title, 'Démo');
    assert.equal(p.qualityFailed, 1);
    assert.deepEqual(p.qualityChecks, [
      { id: 'not_null', status: 'fail', where: 'T · C', violated: 2, pct: 0.5, note: '' }
    ]);
    assert.equal(p.tables[0].columns[0].primaryKey, true);
    assert.equal(p.tables[0].columnCount, 1);
    assert.deepEqual(p.versions, [{ version: 'v1', status: 'current', createdAt: '2026-01-02' }]);
    assert.deepEqual(p.access.leads, ['alice']);
    assert.equal(p.access.state, 'not_permitted');
  });
  it('an empty answer is a page with unknown access', () => {
    const p = parseDatasetPage({});
    assert.equal(p.access.state, 'unknown');
    assert.deepEqual(p.tables, []);
    assert.equal(p.access.youLead, false);
    assert.equal(p.access.application, null);
  });
  it('reads whether the member leads the project and the open access request', () => {
    const access = a => parseDatasetPage({ access: { state: 'not_permitted', ...a } }).access;
    assert.equal(access({ you_lead: true }).youLead, true);
    assert.equal(access({ you_lead: 'yes' }).youLead, false);
    assert.deepEqual(
      access({ application: { id: 7, state: 'submitted', title: 'T' } }).application,
      {
        id: 7,
        state: 'submitted'
      }
    );
    assert.equal(access({ application: { id: '7', state: 'submitted' } }).application, null);
    assert.equal(access({ application: null }).application, null);
  });
});

describe('parseAccessRequest', () => {
  it('reads the number and state of a filed application, or null', () => {
    assert.deepEqual(parseAccessRequest({ id: 12, kind: 'amendment', state: 'submitted' }), {
      id: 12,
      state: 'submitted'
    });
    assert.deepEqual(parseAccessRequest({ id: 3 }), { id: 3, state: 'submitted' });
    for (const junk of [null, {}, { id: 0 }, { id: 1.5 }, { id: -2 }, 'x', [1]]) {
      assert.equal(parseAccessRequest(junk), null, JSON.stringify(junk));
    }
  });
});

describe('parseTable', () => {
  it('reads columns with their keys and constraints', () => {
    const t = parseTable({
      name: 'ER_PRS_F',
      columns: [
        { name: 'A', type: 'date', nomenclature: 'IR_X', constraints: { required: true } },
        { name: 'B', foreign_key: 'IR_BEN_R.BEN_NIR_PSA' },
        { type: 'string' }
      ]
    });
    assert.deepEqual(
      t.columns.map(c => [c.name, c.type, c.nomenclature, c.required, c.foreignKey]),
      [
        ['A', 'date', 'IR_X', true, ''],
        ['B', 'string', '', false, 'IR_BEN_R.BEN_NIR_PSA']
      ]
    );
    assert.equal(parseTable({ name: 'X', column_count: 7 }).columnCount, 7);
  });
});

describe('readCellSource', () => {
  it('writes a ready hdh.read cell for each engine', () => {
    for (const engine of ENGINES) {
      const src = readCellSource('demo-snds', 'IR_BEN_R', engine, ['BEN_NIR_PSA']);
      assert.equal(
        src,
        `import hdh\n\ndf = hdh.read("demo-snds.IR_BEN_R", engine="${engine}", columns=["BEN_NIR_PSA"])`
      );
    }
  });
  it('no columns chosen: every column', () => {
    assert.equal(
      readCellSource('d', 'T', 'pandas', []),
      'import hdh\n\ndf = hdh.read("d.T", engine="pandas")'
    );
  });
  it('wraps a long column list one name a line', () => {
    const cols = Array.from({ length: 12 }, (_, i) => `COLUMN_${i}`);
    const src = readCellSource('demo-snds', 'ER_PRS_F', 'duckdb', cols);
    assert.ok(src.startsWith('import hdh\n\ndf = hdh.read(\n    "demo-snds.ER_PRS_F",\n'));
    assert.ok(src.includes('        "COLUMN_11",\n    ],\n)'));
  });
  it('quotes names so that nothing escapes the string', () => {
    assert.ok(readCellSource('d', 'T"x', 'pandas', []).includes('"d.T\\"x"'));
  });
});

describe('englishTrans', () => {
  it('fills %1, %2', () => {
    assert.equal(englishTrans.__('%1 rows, %2 columns.', 3, 4), '3 rows, 4 columns.');
  });
});
