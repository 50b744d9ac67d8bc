// Unit tests of the review widget's model (src/review-model.ts).
/* global Response */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { englishTrans } from '../lib/catalogue-model.js';
import { HdhApiError } from '../lib/errors.js';
import { REASON_MAX } from '../lib/format.js';
import {
  ReviewClient,
  ReviewError,
  TOKEN_HEADER,
  ageText,
  controlPlanePrefix,
  isReviewWorkspace,
  parseQueue,
  provenanceLabel,
  renderUrl,
  requestView,
  serverName
} from '../lib/review-model.js';
import { fetchSession } from '../lib/session.js';

const json = (status, body) =>
  new Response(body === undefined ? '' : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });

/** A fetch that records its calls and answers from `answer(url, init)`. */
function fakeFetch(answer) {
  const calls = [];
  const fn = async (url, init = {}) => {
    calls.push({ url, init });
    return answer(url, init);
  };
  return { fn, calls };
}

describe('controlPlanePrefix', () => {
  it('is the hub prefix + services/hdh/ for a named, default or prefixed server', () => {
    assert.equal(controlPlanePrefix('/user/bob/review/'), '/services/hdh/');
    assert.equal(controlPlanePrefix('http://127.0.0.1:8000/user/bob/review/'), '/services/hdh/');
    assert.equal(controlPlanePrefix('/user/alice/demo'), '/services/hdh/');
    assert.equal(controlPlanePrefix('/user/alice/'), '/services/hdh/');
    assert.equal(controlPlanePrefix('https://h/jhub/user/a%20b/demo/'), '/jhub/services/hdh/');
    assert.equal(controlPlanePrefix('/'), '/services/hdh/');
  });

  it('knows the review workspace by its server name', () => {
    assert.equal(serverName('/user/bob/review/'), 'review');
    assert.equal(isReviewWorkspace('http://h/user/bob/review/'), true);
    assert.equal(isReviewWorkspace('/user/alice/demo/'), false);
    assert.equal(isReviewWorkspace('/user/review/'), false); // a user called review
    assert.equal(isReviewWorkspace('/user/bob/review/lab/'), false);
  });
});

describe('fetchSession', () => {
  it('reads the session with the cookie only (no token yet)', async () => {
    const { fn, calls } = fakeFetch(() =>
      json(200, {
        user: 'bob',
        role: 'reviewer',
        may_review: true,
        lang: 'fr',
        token: 'ab12',
        pages: '/services/hdh/ui/egress/'
      })
    );
    const s = await fetchSession('/services/hdh/', fn);
    assert.equal(calls[0].url, '/services/hdh/ui/api/session');
    assert.equal(calls[0].init.credentials, 'same-origin');
    assert.deepEqual(s, {
      kind: 'ok',
      session: {
        user: 'bob',
        role: 'reviewer',
        mayReview: true,
        lang: 'fr',
        token: 'ab12',
        pages: '/services/hdh/ui/egress/'
      }
    });
  });

  it('turns 401 into the login state, keeping only a same-origin login_url', async () => {
    let s = await fetchSession('/services/hdh/', async () =>
      json(401, { detail: 'not logged in', login_url: '/services/hdh/ui/egress/' })
    );
    assert.deepEqual(s, {
      kind: 'login',
      detail: 'not logged in',
      loginUrl: '/services/hdh/ui/egress/'
    });
    s = await fetchSession('/p/', async () => json(401, { login_url: '//evil.example/x' }));
    assert.equal(s.loginUrl, '/p/ui/egress/');
    s = await fetchSession('/p/', async () => json(401, { login_url: 'javascript:alert(1)' }));
    assert.equal(s.loginUrl, '/p/ui/egress/');
  });

  it('reports any other answer or a network failure as an error', async () => {
    assert.deepEqual(
      await fetchSession('/p/', async () => new Response('<html>', { status: 502 })),
      {
        kind: 'error',
        detail: '502'
      }
    );
    const s = await fetchSession('/p/', async () => {
      throw new TypeError('Failed to fetch');
    });
    assert.equal(s.kind, 'error');
    assert.match(s.detail, /Failed to fetch/);
  });
});

const row = (id, extra = {}) => ({
  id,
  project: 'demo',
  title: `t${id}`,
  author: 'alice',
  state: 'submitted',
  round: 1,
  created_at: null,
  updated_at: null,
  decided_by: null,
  files: 1,
  submitted_at: null,
  reviewers: [],
  awaiting_me: false,
  ...extra
});

describe('parseQueue', () => {
  it('puts what awaits me first, then the oldest, and skips malformed rows', () => {
    const q = parseQueue([
      row(1, { submitted_at: '2026-12-01T10:00:00+00:00' }),
      row(2, { submitted_at: '2026-12-03T10:00:00+00:00', awaiting_me: true }),
      { id: 'x' },
      row(3, { submitted_at: null }),
      row(4, {
        submitted_at: '2026-12-02T10:00:00+00:00',
        awaiting_me: true,
        reviewers: ['carol', 5]
      }),
      'junk'
    ]);
    assert.deepEqual(
      q.map(r => r.id),
      [4, 2, 1, 3]
    );
    assert.deepEqual(q[0].reviewers, ['carol']);
    assert.equal(q[0].awaitingMe, true);
    assert.deepEqual(parseQueue({ detail: 'no' }), []);
  });
});

describe('ageText', () => {
  const now = Date.parse('2026-12-04T12:00:00Z');
  it('says minutes, hours or days', () => {
    assert.equal(ageText('2026-12-04T11:59:30Z', now, englishTrans), 'just now');
    assert.equal(ageText('2026-12-04T11:35:00Z', now, englishTrans), '25 min');
    assert.equal(ageText('2026-12-04T09:00:00+00:00', now, englishTrans), '3 h');
    assert.equal(ageText('2026-12-02T11:00:00Z', now, englishTrans), '2 d');
    assert.equal(ageText(null, now, englishTrans), '');
    assert.equal(ageText('soon', now, englishTrans), '');
  });

  it('speaks the translator’s language', () => {
    const fr = {
      ...englishTrans,
      __: (id, ...a) => ({ '%1 d': '%1 j', '%1 h': '%1 h' })[id].replace('%1', a[0])
    };
    assert.equal(ageText('2026-12-01T12:00:00Z', now, fr), '3 j');
  });
});

const file = (path, extra = {}) => ({
  path,
  role: 'output',
  sha256: 'a'.repeat(64),
  size: 10,
  check_status: 'pass',
  check_report: { status: 'pass', summary: 'table: fine', flags: [] },
  vote_count: 0,
  votes: [],
  exceptions: [],
  ...extra
});

const request = (extra = {}) => ({
  id: 7,
  project: 'demo',
  title: 'Rates',
  author: 'alice',
  state: 'submitted',
  round: 1,
  viewer: 'reviewer',
  files: [],
  comments: [],
  released: [],
  ...extra
});

describe('requestView', () => {
  it('says which votes and exceptions the reviewer may still record', () => {
    const v = requestView(
      request({
        files: [
          file('ok.csv'),
          file('bad.csv', {
            check_status: 'fail',
            check_report: {
              status: 'fail',
              flags: [
                { rule: 'min-count', severity: 'fail', message: 'cell 3', location: { row: 2 } }
              ]
            }
          }),
          file('voted.csv', {
            vote_count: 1,
            votes: [{ reviewer: 'bob', decision: 'changes', sha256: 'x', at: null }]
          }),
          file('code.py', { role: 'code', check_status: null }),
          file('full.csv', { vote_count: 2 })
        ]
      }),
      'bob'
    );
    const by = Object.fromEntries(v.files.map(f => [f.path, f]));
    assert.equal(by['ok.csv'].canVote, true);
    assert.equal(by['ok.csv'].needsException, false);
    assert.equal(by['bad.csv'].needsException, true);
    assert.equal(by['bad.csv'].canException, true);
    assert.deepEqual(by['bad.csv'].flags, [
      { rule: 'min-count', severity: 'fail', message: 'cell 3', location: 'row=2' }
    ]);
    assert.equal(by['voted.csv'].canVote, false);
    assert.equal(by['voted.csv'].myVote, 'changes');
    assert.equal(by['code.py'].canVote, false);
    assert.equal(by['full.csv'].canVote, false);
    assert.equal(v.mayDecide, false);
    assert.equal(v.mayCommentPrivately, true);
  });

  it('keeps the blinded votes as given and splits comments', () => {
    const v = requestView(
      request({
        state: 'reviewed',
        files: [file('a.csv', { vote_count: 2, votes: [] })],
        comments: [
          { author: 'alice', visibility: 'public', path: null, body: 'hi', round: 1, at: 'x' },
          { author: 'bob', visibility: 'private', path: 'a.csv', body: 'psst', round: 1, at: 'y' },
          { author: 'bob', visibility: 'public', body: '' }
        ]
      }),
      'bob'
    );
    assert.equal(v.files[0].voteCount, 2);
    assert.deepEqual(v.files[0].votes, []);
    assert.deepEqual(
      v.publicComments.map(c => c.body),
      ['hi']
    );
    assert.deepEqual(v.privateComments, [
      { author: 'bob', body: 'psst', path: 'a.csv', round: 1, at: 'y' }
    ]);
    assert.equal(v.files[0].canVote, false);
    assert.equal(v.mayDecide, true);
    assert.equal(v.mayRelease, false);
  });

  it('offers the release once approved, and nothing once final', () => {
    assert.equal(requestView(request({ state: 'approved' }), 'bob').mayRelease, true);
    const done = requestView(request({ state: 'released' }), 'bob');
    assert.equal(done.mayComment, false);
    assert.equal(done.mayRelease, false);
    const member = requestView(request({ viewer: 'member', files: [file('a.csv')] }), 'alice');
    assert.equal(member.files[0].canVote, false);
    assert.equal(member.mayCommentPrivately, false);
    assert.equal(requestView({ detail: 'no' }, 'bob'), null);
  });

  it('lists the provenance entries with their code', () => {
    const v = requestView(
      request({
        files: [
          file('a.csv', {
            provenance: [
              { kind: 'file', path: 'a.csv', snapshot_at: '2026-12-04T10:00:00.000000+00:00' },
              {
                kind: 'execution',
                seq: 12,
                time: '2026-12-04T09:59:00.000000+00:00',
                user: 'alice',
                code: 'df.to_csv("a.csv")',
                truncated: false
              },
              { kind: 'notebook', seq: 13, time: 't', user: 'alice', path: 'n.ipynb' },
              'junk'
            ]
          })
        ]
      }),
      'bob'
    );
    const p = v.files[0].provenance;
    assert.deepEqual(
      p.map(e => e.kind),
      ['file', 'execution', 'notebook']
    );
    assert.equal(p[1].code, 'df.to_csv("a.csv")');
    assert.equal(
      provenanceLabel(p[1], englishTrans),
      'Cell run by alice at 2026-12-04 09:59:00 UTC (audit #12)'
    );
    assert.equal(provenanceLabel(p[2], englishTrans), 'Notebook n.ipynb saved by alice at t UTC');
    assert.equal(
      provenanceLabel({ kind: 'code_file', path: 'run.py', time: '' }, englishTrans),
      'Code file run.py of the request'
    );
  });
});

describe('renderUrl', () => {
  it('encodes the path as one query value', () => {
    assert.equal(
      renderUrl('/services/hdh/', 7, 'out/a b&c=1.svg'),
      '/services/hdh/ui/egress/requests/7/render?path=out%2Fa%20b%26c%3D1.svg'
    );
  });
});

describe('ReviewClient', () => {
  it('sends the token header and the contract’s JSON bodies', async () => {
    const { fn, calls } = fakeFetch(() => json(201, { ok: true }));
    const c = new ReviewClient('/services/hdh/', 'tok', fn);
    await c.vote(7, 'a.csv', 'approve', ' because ');
    await c.vote(7, 'b.csv', 'reject', '');
    await c.exception(7, 'a.csv', 'aggregated');
    await c.comment(7, 'note', 'private', 'a.csv');
    await c.decide(7, 'return', 'round the counts');
    await c.release(7);
    assert.deepEqual(
      calls.map(x => [x.init.method, x.url, x.init.body && JSON.parse(x.init.body)]),
      [
        [
          'POST',
          '/services/hdh/api/egress/requests/7/votes',
          { path: 'a.csv', decision: 'approve', exception_reason: 'because' }
        ],
        [
          'POST',
          '/services/hdh/api/egress/requests/7/votes',
          { path: 'b.csv', decision: 'reject' }
        ],
        [
          'POST',
          '/services/hdh/api/egress/requests/7/exceptions',
          { path: 'a.csv', reason: 'aggregated' }
        ],
        [
          'POST',
          '/services/hdh/api/egress/requests/7/comments',
          { body: 'note', visibility: 'private', path: 'a.csv' }
        ],
        ['POST', '/services/hdh/api/egress/requests/7/return', { reason: 'round the counts' }],
        ['POST', '/services/hdh/api/egress/requests/7/release', undefined]
      ]
    );
    for (const x of calls) {
      assert.equal(x.init.headers[TOKEN_HEADER], 'tok');
      assert.equal(x.init.credentials, 'same-origin');
    }
  });

  it('reads a project’s audited code with the token, the project path-encoded', async () => {
    const { fn, calls } = fakeFetch(() => json(200, { events: [], next_cursor: null }));
    const c = new ReviewClient('/services/hdh/', 'tok', fn);
    await c.auditCode('demo', { kind: 'cell', limit: '100' });
    await c.auditCode('a/../b', {});
    assert.deepEqual(
      calls.map(x => [x.init.method, x.url]),
      [
        ['GET', '/services/hdh/api/projects/demo/audit/code?kind=cell&limit=100'],
        ['GET', '/services/hdh/api/projects/a%2F..%2Fb/audit/code']
      ]
    );
    assert.equal(calls[0].init.headers[TOKEN_HEADER], 'tok');
  });

  it('maps a refusal to its one-line detail', async () => {
    const c = new ReviewClient('/p/', 't', async () =>
      json(409, {
        detail: "'a.csv' failed the automated checks (fail): record an exception\nwith a reason"
      })
    );
    await assert.rejects(c.vote(7, 'a.csv', 'approve'), e => {
      assert.ok(e instanceof ReviewError);
      assert.equal(e.status, 409);
      assert.equal(
        e.detail,
        "'a.csv' failed the automated checks (fail): record an exception with a reason"
      );
      return true;
    });
    const v = new ReviewClient('/p/', 't', async () =>
      json(422, {
        detail: [{ loc: ['body', 'reason'], msg: 'String should have at most 10000 characters' }]
      })
    );
    await assert.rejects(v.exception(7, 'a', 'x'), /reason: String should have at most/);
    const h = new ReviewClient(
      '/p/',
      't',
      async () => new Response('<h1>Bad gateway</h1>', { status: 502, statusText: 'Bad Gateway' })
    );
    await assert.rejects(h.queue(), e => e.detail === '502 Bad Gateway');
  });

  it('refuses with an HdhApiError: worded as the sandbox words it, detail cut', async () => {
    const c = new ReviewClient('/p/', 't', async () =>
      json(403, { detail: 'not a reviewer of request #7\n' + 'x'.repeat(1000) })
    );
    await assert.rejects(c.queue(), e => {
      assert.ok(e instanceof HdhApiError && e instanceof ReviewError);
      assert.equal(e.reason, e.detail);
      assert.ok(e.detail.startsWith('not a reviewer of request #7 xxx'), e.detail);
      assert.ok(e.detail.length <= REASON_MAX && e.detail.endsWith('…'), e.detail.length);
      assert.equal(e.message, `Not allowed: ${e.detail}`);
      assert.equal(e.describe(englishTrans), e.message);
      return true;
    });
    const down = new ReviewClient('/p/', 't', async () => {
      throw new TypeError('Failed to fetch');
    });
    await assert.rejects(down.queue(), e => {
      assert.ok(e instanceof ReviewError);
      assert.equal(e.status, 0);
      assert.equal(e.detail, 'TypeError: Failed to fetch');
      assert.match(e.message, /could not be reached/);
      return true;
    });
  });
});

describe('ReviewClient.auditAll', () => {
  it('reads every project’s audited code, filtered, with the token', async () => {
    const { fn, calls } = fakeFetch(() => json(200, { events: [], next_cursor: null }));
    const c = new ReviewClient('/services/hdh/', 'tok', fn);
    await c.auditAll({ project: 'demo', user: 'alice' });
    await c.auditAll({});
    assert.deepEqual(
      calls.map(x => x.url),
      ['/services/hdh/api/audit/code?project=demo&user=alice', '/services/hdh/api/audit/code']
    );
    assert.equal(calls[1].init.headers[TOKEN_HEADER], 'tok');
  });
});
