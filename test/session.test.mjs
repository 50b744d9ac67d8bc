// Unit tests of the control plane's session for the page (src/session.ts): one fetch for
// every caller, a fresh one after a call refused with the session's token (401), and the
// refused call retried once with the fresh token.
/* global Response, setTimeout */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ReviewError } from '../lib/review-model.js';
import { SessionStore, clientFor, pageSession } from '../lib/session.js';

const json = (status, body) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });

const session = token => ({
  user: 'bob',
  role: 'reviewer',
  may_review: true,
  lang: 'en',
  token,
  pages: '/services/hdh/ui/egress/'
});

/**
 * A control plane: the session answers `tokens` in turn (then the last one again), or
 * `sessionAnswer()` when given; the API accepts the current token only.
 */
function controlPlane({ tokens = ['t1'], sessionAnswer = null } = {}) {
  const calls = [];
  let issued = 0;
  let current = null;
  const fn = async (url, init = {}) => {
    calls.push({ url, token: init.headers?.['X-HDH-Token'] ?? null });
    await new Promise(r => setTimeout(r, 1)); // answers come later, as over a network
    if (url.endsWith('ui/api/session')) {
      if (sessionAnswer) {
        return sessionAnswer();
      }
      current = tokens[Math.min(issued, tokens.length - 1)];
      issued += 1;
      return json(200, session(current));
    }
    if (init.headers?.['X-HDH-Token'] !== current) {
      return json(401, { detail: 'X-HDH-Token does not match this session' });
    }
    return json(200, []);
  };
  const sessionCalls = () => calls.filter(c => c.url.endsWith('ui/api/session')).length;
  return { fn, calls, sessionCalls, expire: () => (current = null) };
}

describe('SessionStore', () => {
  it('fetches the session once for every caller, concurrent or later', async () => {
    const cp = controlPlane();
    const store = new SessionStore('/services/hdh/', cp.fn);
    const states = await Promise.all([store.get(), store.get(), store.get()]);
    const later = await store.get();
    assert.equal(cp.sessionCalls(), 1);
    for (const s of [...states, later]) {
      assert.equal(s.kind, 'ok');
      assert.equal(s.session.token, 't1');
    }
    assert.equal(cp.calls[0].url, '/services/hdh/ui/api/session');
  });

  it('does not keep a login or error state: the next caller asks again', async () => {
    let answer = () => json(401, { detail: 'not signed in', login_url: '/services/hdh/ui/' });
    const cp = controlPlane({ sessionAnswer: () => answer() });
    const store = new SessionStore('/services/hdh/', cp.fn);
    assert.equal((await store.get()).kind, 'login');
    answer = () => new Response('<html>', { status: 502 });
    assert.deepEqual(await store.get(), { kind: 'error', detail: '502' });
    answer = () => json(200, session('t9'));
    assert.equal((await store.get()).kind, 'ok');
    assert.equal((await store.get()).kind, 'ok');
    assert.equal(cp.sessionCalls(), 3);
  });

  it('renews once for every call refused with the same token', async () => {
    const cp = controlPlane({ tokens: ['t1', 't2'] });
    const store = new SessionStore('/p/', cp.fn);
    await store.get();
    const renewed = await Promise.all([store.renew('t1'), store.renew('t1')]);
    assert.deepEqual(
      renewed.map(s => s.session.token),
      ['t2', 't2']
    );
    // a call refused with the old token after the renewal gets the fresh one, no fetch
    assert.equal((await store.renew('t1')).session.token, 't2');
    assert.equal(cp.sessionCalls(), 2);
    assert.equal((await store.get()).session.token, 't2');
    assert.equal(cp.sessionCalls(), 2);
  });
});

describe('clientFor', () => {
  it('retries a call refused with an expired token once, with the fresh session', async () => {
    const cp = controlPlane({ tokens: ['t1', 't2'] });
    const store = new SessionStore('/services/hdh/', cp.fn);
    const state = await store.get();
    const client = clientFor(store, state.session);
    assert.deepEqual(await client.queue(), []);
    cp.expire(); // the control plane forgets t1 (the hub session was renewed)
    assert.deepEqual(await client.queue(), []);
    assert.deepEqual(
      cp.calls.map(c => [c.url, c.token]),
      [
        ['/services/hdh/ui/api/session', null],
        ['/services/hdh/api/egress/requests', 't1'],
        ['/services/hdh/api/egress/requests', 't1'],
        ['/services/hdh/ui/api/session', null],
        ['/services/hdh/api/egress/requests', 't2']
      ]
    );
    assert.equal(client.token, 't2');
    // another widget's client, made before, shares the fresh session without a fetch
    const other = clientFor(store, state.session);
    assert.deepEqual(await other.queue(), []);
    assert.equal(cp.sessionCalls(), 2);
  });

  it('refuses as before when the fresh session does not help (signed out)', async () => {
    let signedIn = true;
    const fn = async url => {
      if (url.endsWith('ui/api/session')) {
        return signedIn
          ? json(200, session('t1'))
          : json(401, { detail: 'not signed in', login_url: '/p/ui/' });
      }
      return json(401, { detail: 'the hub session expired', login_url: '/p/ui/egress/' });
    };
    const store = new SessionStore('/p/', fn);
    const client = clientFor(store, (await store.get()).session);
    signedIn = false;
    await assert.rejects(client.queue(), e => {
      assert.ok(e instanceof ReviewError);
      assert.equal(e.status, 401);
      assert.equal(e.detail, 'the hub session expired');
      assert.equal(e.loginUrl, '/p/ui/egress/');
      return true;
    });
  });

  it('retries only once', async () => {
    let sessions = 0;
    let api = 0;
    const fn = async url => {
      if (url.endsWith('ui/api/session')) {
        sessions += 1;
        return json(200, session(`t${sessions}`));
      }
      api += 1;
      return json(401, { detail: 'no' });
    };
    const store = new SessionStore('/p/', fn);
    const client = clientFor(store, (await store.get()).session);
    await assert.rejects(client.queue(), e => e.status === 401);
    assert.equal(api, 2);
    assert.equal(sessions, 2);
  });
});

describe('pageSession', () => {
  it("is one store per control plane for the page, with the browser's fetch", async () => {
    assert.equal(pageSession('/services/hdh/'), pageSession('/services/hdh/'));
    assert.notEqual(pageSession('/services/hdh/'), pageSession('/jhub/services/hdh/'));
    const saved = globalThis.fetch;
    const urls = [];
    globalThis.fetch = async url => {
      urls.push(url);
      return json(200, session('tp'));
    };
    try {
      const store = pageSession('/t/services/hdh/');
      await Promise.all([store.get(), pageSession('/t/services/hdh/').get()]);
      assert.deepEqual(urls, ['/t/services/hdh/ui/api/session']);
    } finally {
      globalThis.fetch = saved;
    }
  });
});
