// Unit tests of one load at a time (src/loading.ts), which the panel's sections use.
/* global setImmediate */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SharedLoad } from '../lib/loading.js';

/** A load that waits until released, counting its starts per key. */
function gate() {
  const started = [];
  const pending = [];
  const run = key => {
    started.push(key);
    return new Promise(resolve => pending.push(resolve));
  };
  const release = () => pending.splice(0).forEach(r => r());
  return { run, started, release };
}

describe('SharedLoad', () => {
  it('sends one load for two clicks while it is under way', async () => {
    const g = gate();
    const loads = new SharedLoad(g.run);
    const first = loads.start();
    const second = loads.start();
    assert.equal(first, second);
    assert.equal(loads.busy, true);
    assert.deepEqual(g.started, ['']);
    g.release();
    await first;
    assert.equal(loads.busy, false);
    const third = loads.start(); // done: the next click loads again
    assert.deepEqual(g.started, ['', '']);
    g.release();
    await third;
  });

  it('does not share the load of other words (a new search)', async () => {
    const g = gate();
    const loads = new SharedLoad(g.run);
    const a = loads.start('snds');
    const b = loads.start('cancer');
    const c = loads.start('cancer');
    assert.notEqual(a, b);
    assert.equal(b, c);
    assert.deepEqual(g.started, ['snds', 'cancer']);
    g.release();
    await Promise.all([a, b]);
  });

  it('after a change, loads again once the load under way is done', async () => {
    const g = gate();
    const loads = new SharedLoad(g.run);
    const stale = loads.start();
    const fresh = loads.after();
    const alsoFresh = loads.after();
    assert.deepEqual(g.started, ['']);
    g.release();
    await stale;
    await new Promise(r => setImmediate(r));
    assert.deepEqual(g.started, ['', '']); // one fresh load for both
    g.release();
    await Promise.all([fresh, alsoFresh]);
    assert.equal(loads.busy, false);
  });

  it('loads again after a failed load', async () => {
    let n = 0;
    const loads = new SharedLoad(async () => {
      n += 1;
      if (n === 1) {
        throw new Error('down');
      }
    });
    await assert.rejects(loads.start(), /down/);
    await loads.after();
    assert.equal(n, 2);
  });
});
