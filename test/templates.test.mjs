// Unit tests of the template cards' readers (src/model.ts: parseTemplates, templateCaption).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseTemplates, templateCaption } from '../lib/model.js';

const MI = {
  name: 'mi-pathway',
  title: 'Care pathway after myocardial infarction',
  description: 'Share of persons dispensed each class.',
  parameters: [
    { name: 'dataset', type: 'str', default: '"demo-snds"', help: 'a dataset' },
    { name: 'version', type: 'None', default: 'None', help: '' },
    { name: 'window_days', type: 'int', default: 90, help: 'days after discharge' }
  ]
};

describe('parseTemplates', () => {
  it('reads the route answer', () => {
    const [t] = parseTemplates({ results: [MI] });
    assert.equal(t.name, 'mi-pathway');
    assert.equal(t.title, 'Care pathway after myocardial infarction');
    assert.deepEqual(
      t.parameters.map(p => [p.name, p.type, p.default]),
      [
        ['dataset', 'str', '"demo-snds"'],
        ['version', 'None', 'None'],
        ['window_days', 'int', '90']
      ]
    );
  });
  it('drops unsafe names and malformed entries, defaults the title to the name', () => {
    const parsed = parseTemplates({
      results: [
        { name: '../etc' },
        { name: 'a/b' },
        { name: '' },
        null,
        'x',
        { name: 'plain', parameters: [{ type: 'int' }, 3] }
      ]
    });
    assert.deepEqual(parsed, [{ name: 'plain', title: 'plain', description: '', parameters: [] }]);
  });
  it('answers an empty list for anything else', () => {
    assert.deepEqual(parseTemplates(null), []);
    assert.deepEqual(parseTemplates({ detail: 'down' }), []);
  });
});

describe('templateCaption', () => {
  it('holds the description and one line per parameter', () => {
    const caption = templateCaption(parseTemplates({ results: [MI] })[0]);
    const lines = caption.split('\n');
    assert.equal(lines[0], MI.description);
    assert.ok(lines.includes('• dataset: str = "demo-snds" (a dataset)'), caption);
    assert.ok(lines.includes('• version = None'), caption);
    assert.ok(lines.includes('• window_days: int = 90 (days after discharge)'), caption);
  });
  it('is the description alone without parameters', () => {
    assert.equal(templateCaption({ ...MI, parameters: [] }), MI.description);
  });
});
