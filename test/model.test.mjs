// Unit tests of the panel's pure readers (src/model.ts, compiled to lib/ by `npm run build:lib`).
// Run with `npm test` (node's built-in test runner; no browser, no server).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  contextFrom,
  parseCatalogue,
  parseMyData,
  parseRequest,
  parseRequests,
  readSnippet,
  safeSameOriginPath
} from '../lib/model.js';

describe('safeSameOriginPath', () => {
  it('keeps a same-origin absolute path', () => {
    const url = '/services/hdh/ui/projects/demo/datasets?x=1#top';
    assert.equal(safeSameOriginPath(url), url);
  });
  for (const bad of [
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'https://evil.example/',
    '//evil.example/x',
    '/\\evil.example',
    '\\\\evil.example',
    '/ok\n//evil.example',
    '/\tjavascript:alert(1)',
    'hub/relative',
    '',
    '/' + 'a'.repeat(2001)
  ]) {
    it(`refuses ${JSON.stringify(bad).slice(0, 40)}`, () => {
      assert.equal(safeSameOriginPath(bad), null);
    });
  }
  it('refuses what is not a string', () => {
    for (const v of [null, undefined, 42, {}, ['/x']]) {
      assert.equal(safeSameOriginPath(v), null);
    }
  });
});

describe('parseMyData', () => {
  it('reads the current answer', () => {
    const d = parseMyData({
      project: 'demo',
      user: 'alice',
      mounts: [
        {
          dataset: 'demo-snds',
          version: 'v1',
          path: '/data/demo-snds/v1',
          tables: [{ table: 'IR_BEN_R' }, { table: 'T_MCO23A' }]
        }
      ],
      permitted: [
        { dataset: 'demo-snds', version: 'v1', mounted: true },
        { dataset: 'demo-snds', version: 'v2', mounted: false }
      ],
      change_url: '/services/hdh/ui/projects/demo/datasets'
    });
    assert.equal(d.project, 'demo');
    assert.equal(d.user, 'alice');
    assert.deepEqual(d.mounts, [
      {
        dataset: 'demo-snds',
        version: 'v1',
        path: '/data/demo-snds/v1',
        tables: ['IR_BEN_R', 'T_MCO23A']
      }
    ]);
    assert.deepEqual(
      d.permitted?.map(p => [p.version, p.mounted]),
      [
        ['v1', true],
        ['v2', false]
      ]
    );
    assert.equal(d.changeUrl, '/services/hdh/ui/projects/demo/datasets');
  });

  it('reads an older server answer (mounts only)', () => {
    const d = parseMyData({ mounts: [{ dataset: 'ds', version: 'v1' }] });
    assert.deepEqual(d.mounts, [{ dataset: 'ds', version: 'v1', path: '/data/ds/v1', tables: [] }]);
    assert.equal(d.permitted, null);
    assert.equal(d.changeUrl, null);
    assert.equal(d.project, null);
    assert.equal(d.permittedError, null);
  });

  it('skips malformed entries and survives a non-object body', () => {
    const d = parseMyData({
      mounts: [null, 'x', { dataset: 'ds' }, { version: 'v1' }, { dataset: 'ok', version: 'v2' }],
      permitted: [{ dataset: 'ok', version: 'v2' }, 7],
      change_url: 'javascript:alert(1)'
    });
    assert.deepEqual(
      d.mounts.map(m => m.dataset),
      ['ok']
    );
    // a permitted version that is mounted counts as mounted even when the flag is absent
    assert.deepEqual(d.permitted, [{ dataset: 'ok', version: 'v2', mounted: true }]);
    assert.equal(d.changeUrl, null);
    for (const body of [null, 'text', 3, []]) {
      assert.deepEqual(parseMyData(body).mounts, []);
    }
  });

  it('reports why the permitted versions are unknown', () => {
    const d = parseMyData({ mounts: [], permitted_error: 'no API bridge' });
    assert.equal(d.permittedError, 'no API bridge');
    assert.equal(d.permitted, null);
  });
});

describe('readSnippet', () => {
  it('reads the first table, the path quoted as a Python string literal', () => {
    const code = readSnippet({ dataset: 'd', version: 'v1', path: '/data/d/v1', tables: ['A'] });
    assert.equal(
      code,
      'import pyarrow.parquet as pq\n' +
        'table = pq.read_table("/data/d/v1/A.parquet")  # table.to_pandas() for a DataFrame'
    );
  });
  it('escapes quotes and newlines of a hostile path', () => {
    const path = '/data/x")\nimport os; os.system("id")#';
    const code = readSnippet({ dataset: 'x', version: 'v', path, tables: [] });
    assert.equal(code.split('\n').length, 2, code); // no line injected
    assert.ok(code.includes(JSON.stringify(path)), code);
  });
});

describe('parseCatalogue', () => {
  it('reads search hits wrapped by the sandbox relay', () => {
    const hits = parseCatalogue({
      results: [
        {
          kind: 'table',
          dataset: 'demo-snds',
          version: 'v1',
          table: 'IR_BEN_R',
          variable: null,
          score: 3.2,
          snippet: 'Référentiel des bénéficiaires',
          field: 'title'
        },
        {
          kind: 'variable',
          dataset: 'demo-snds',
          version: 'v1',
          table: 'IR_BEN_R',
          variable: 'BEN_SEX_COD',
          snippet: 'Sexe'
        }
      ]
    });
    assert.deepEqual(hits, [
      {
        dataset: 'demo-snds',
        version: 'v1',
        table: 'IR_BEN_R',
        variable: '',
        description: 'Référentiel des bénéficiaires'
      },
      {
        dataset: 'demo-snds',
        version: 'v1',
        table: 'IR_BEN_R',
        variable: 'BEN_SEX_COD',
        description: 'Sexe'
      }
    ]);
  });
  it('reads the dataset list (records) and a bare list', () => {
    const rec = { name: 'demo-snds', version: 'v1', title: 'Demo', description: 'Synthetic' };
    assert.deepEqual(parseCatalogue({ results: [rec] }), [
      { dataset: 'demo-snds', version: 'v1', table: '', variable: '', description: 'Synthetic' }
    ]);
    assert.equal(parseCatalogue([rec]).length, 1);
  });
  it('drops rows that name nothing', () => {
    assert.deepEqual(parseCatalogue({ results: [{}, null, { snippet: 'x' }] }), []);
    assert.deepEqual(parseCatalogue('nope'), []);
  });
});

describe('parseRequests / parseRequest', () => {
  it('reads a list of summaries (file counts only)', () => {
    const [r] = parseRequests({
      results: [
        { id: 7, title: 'T', state: 'draft', files: 2, project: 'demo' },
        { title: 'no id' }
      ]
    });
    assert.equal(r.id, '7');
    assert.equal(r.files, null);
    assert.equal(r.fileCount, 2);
  });
  it('reads a full view with check reports', () => {
    const r = parseRequest({
      id: 3,
      title: 'Counts',
      state: 'submitted',
      files: [
        {
          path: 'out.csv',
          role: 'output',
          sha256: 'ab',
          check_status: 'fail',
          check_report: {
            status: 'fail',
            summary: 'table: 1 flag(s): threshold x1',
            flags: [
              {
                rule: 'threshold',
                message: 'cell below 10',
                location: { row: 2, column: 'n' },
                severity: 'fail'
              }
            ]
          }
        },
        { role: 'code' }
      ],
      comments: [{ author: 'bob', body: 'please round' }, { author: 'x' }]
    });
    assert.equal(r.fileCount, 1);
    assert.deepEqual(r.files, [
      {
        path: 'out.csv',
        role: 'output',
        sha256: 'ab',
        checkStatus: 'fail',
        checkSummary: 'table: 1 flag(s): threshold x1',
        checkError: '',
        flags: [
          {
            rule: 'threshold',
            message: 'cell below 10',
            location: 'row=2, column=n',
            severity: 'fail'
          }
        ]
      }
    ]);
    assert.deepEqual(r.comments, [{ author: 'bob', body: 'please round' }]);
    assert.deepEqual(r.released, []);
    assert.equal(r.uiUrl, null);
  });
  it('reads released files and keeps only a same-origin portal link', () => {
    const released = [{ name: 'out.csv', sha256: 'ab', done: true }];
    const ok = parseRequest({ id: 1, released, ui_url: '/services/hdh/ui/egress/requests/1' });
    assert.deepEqual(ok.released, ['out.csv']);
    const named = parseRequest({
      id: 2,
      released: [{ name: 'ab12-out.csv', filename: 'out.csv' }]
    });
    assert.deepEqual(named.released, ['out.csv']);
    assert.equal(ok.uiUrl, '/services/hdh/ui/egress/requests/1');
    assert.equal(parseRequest({ id: 1, ui_url: 'https://evil.example/' }).uiUrl, null);
  });
  it('reads the check: {status, flags} form and a file not checked yet', () => {
    const r = parseRequest({
      id: 'a',
      files: [
        { path: 'x.csv', check: { status: 'review', flags: [] } },
        { path: 'y.csv', check_status: null }
      ]
    });
    assert.equal(r.state, 'unknown');
    assert.deepEqual(
      r.files.map(f => f.checkStatus),
      ['review', null]
    );
  });
  it('refuses what is not a request', () => {
    for (const v of [null, [], 'x', { title: 'no id' }]) {
      assert.equal(parseRequest(v), null);
    }
    assert.deepEqual(parseRequests({ detail: 'down' }), []);
  });
});

describe('contextFrom', () => {
  const empty = { population: '', variables: '', dof: '', description: '' };
  it('sends only what was filled in', () => {
    assert.deepEqual(contextFrom(empty), {});
    assert.deepEqual(
      contextFrom({
        population: ' adults ',
        variables: 'age, sex,, ',
        dof: ' 3 ',
        description: 'd'
      }),
      { population: 'adults', variables: ['age', 'sex'], degrees_of_freedom: 3, description: 'd' }
    );
  });
  it('refuses degrees of freedom that are not a count', () => {
    for (const dof of ['-1', '1.5', 'abc', '1e3', '9999999999']) {
      assert.throws(() => contextFrom({ ...empty, dof }), /whole number/);
    }
  });
});
