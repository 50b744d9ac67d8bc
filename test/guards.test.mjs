// Unit tests of the shared type guards (src/guards.ts) every reader of an answer uses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { arr, isObj, str, textOf } from '../lib/guards.js';

describe('isObj', () => {
  it('is true for a JSON object only', () => {
    assert.equal(isObj({}), true);
    assert.equal(isObj({ a: 1 }), true);
    for (const v of [null, undefined, [], [1], 'x', 1, true]) {
      assert.equal(isObj(v), false, JSON.stringify(v));
    }
  });
});

describe('str and textOf', () => {
  it('str keeps strings only', () => {
    assert.equal(str('a'), 'a');
    assert.equal(str(''), '');
    for (const v of [7, null, undefined, {}, ['a'], true]) {
      assert.equal(str(v), '');
    }
  });

  it('textOf also writes a finite number (an id) as text', () => {
    assert.equal(textOf('a'), 'a');
    assert.equal(textOf(7), '7');
    assert.equal(textOf(1.5), '1.5');
    for (const v of [NaN, Infinity, null, undefined, {}, ['a'], true]) {
      assert.equal(textOf(v), '');
    }
  });
});

describe('arr', () => {
  it('keeps arrays, else an empty one', () => {
    const a = [1, 'b'];
    assert.equal(arr(a), a);
    for (const v of [null, undefined, {}, 'ab', 3]) {
      assert.deepEqual(arr(v), []);
    }
  });
});

describe('the readers share the guards', () => {
  it('model and catalogue-model read numeric ids as text, review-model does not', async () => {
    const { parseRequest } = await import('../lib/model.js');
    assert.equal(parseRequest({ id: 7, title: 't', state: 'draft' })?.id, '7');
    const { parseQueue } = await import('../lib/review-model.js');
    assert.equal(parseQueue([{ id: 3, project: 42, title: 't' }])[0].project, '');
  });
});
