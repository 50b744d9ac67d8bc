// The extension's French catalogue (jupyterlab_hdh/locale/fr_FR/LC_MESSAGES/jupyterlab_hdh.po)
// against the strings src/*.ts passes to trans.__ / trans._n: every one translated, none
// orphaned, the same %1, %2… placeholders, and no user string left outside trans.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { URL } from 'node:url';

const root = new URL('../', import.meta.url);
const PO = new URL('jupyterlab_hdh/locale/fr_FR/LC_MESSAGES/jupyterlab_hdh.po', root);
const LIT = String.raw`(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")`;

/** A TypeScript string literal's value (the escapes src/ uses: quotes and backslashes). */
function unquote(lit) {
  const body = lit.slice(1, -1);
  return body.replace(/\\(.)/g, (_, c) => ({ n: '\n', t: '\t' })[c] ?? c);
}

/** Every msgid src/*.ts passes to __() or _n() (singular and plural), and the calls whose
 * first argument is not a literal (which a catalogue cannot check). */
export function extract() {
  const ids = new Map(); // msgid -> plural msgid or null
  const dynamic = [];
  const dir = new URL('src/', root);
  for (const f of readdirSync(dir).filter(f => f.endsWith('.ts'))) {
    const src = readFileSync(new URL(f, dir), 'utf8');
    for (const m of src.matchAll(/(?<![\w$])(?:trans\.|this\.trans\.)?(__|_n|_p)\(/g)) {
      const rest = src.slice(m.index + m[0].length);
      if (/^\s*(msgid|msgctxt)\s*:/.test(rest)) {
        continue; // the ITrans interface's own declaration
      }
      const r = new RegExp(String.raw`^\s*(${LIT})\s*(?:,\s*(${LIT})\s*)?[,)]`).exec(rest);
      if (!r || m[1] === '_p') {
        dynamic.push(`${f}: ${m[0]}${rest.slice(0, 50).replace(/\s+/g, ' ')}`);
        continue;
      }
      ids.set(unquote(r[1]), m[1] === '_n' && r[2] ? unquote(r[2]) : null);
    }
  }
  return { ids, dynamic };
}

/** The .po's entries: msgid -> { plural, msgstr: [] } (the header left out). */
export function parsePo(text) {
  const entries = new Map();
  let cur = null;
  let key = null;
  const flush = () => {
    if (cur && cur.msgid !== '') {
      entries.set(cur.msgid, cur);
    }
    cur = null;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) {
      flush();
      continue;
    }
    if (line.startsWith('#')) {
      continue;
    }
    let value;
    if (line.startsWith('"')) {
      value = JSON.parse(line);
    } else {
      const sp = line.indexOf(' ');
      key = line.slice(0, sp);
      value = JSON.parse(line.slice(sp + 1));
      if (key === 'msgid') {
        flush();
        cur = { msgid: '', plural: null, msgstr: [] };
      }
    }
    if (key === 'msgid') {
      cur.msgid += value;
    } else if (key === 'msgid_plural') {
      cur.plural = (cur.plural ?? '') + value;
    } else if (key.startsWith('msgstr')) {
      const i = key === 'msgstr' ? 0 : Number(key.slice(7, -1));
      cur.msgstr[i] = (cur.msgstr[i] ?? '') + value;
    }
  }
  flush();
  return entries;
}

const placeholders = s => [...new Set(s.match(/%\d+/g) ?? [])].sort().join(' ');

describe('French catalogue of the extension', () => {
  const { ids, dynamic } = extract();
  const po = parsePo(readFileSync(PO, 'utf8'));

  it('finds the strings of every module', () => {
    assert.ok(ids.size > 150, `only ${ids.size} strings found in src/`);
    for (const s of ['My data', 'HDH Catalogue', 'Audited code', 'Add to export request…']) {
      assert.ok(ids.has(s), s);
    }
  });

  it('passes only literals to trans (a variable cannot be checked)', () => {
    assert.deepEqual(dynamic, []);
  });

  it('has a French entry for every string of src/', () => {
    const missing = [...ids.keys()].filter(id => !po.get(id)?.msgstr.every(s => s));
    assert.deepEqual(missing, [], `not translated in ${PO.pathname}:\n${missing.join('\n')}`);
  });

  it('has no orphaned entry', () => {
    const orphans = [...po.keys()].filter(id => !ids.has(id));
    assert.deepEqual(orphans, [], `not used by src/ any more:\n${orphans.join('\n')}`);
  });

  it('keeps plurals and placeholders', () => {
    for (const [id, plural] of ids) {
      const e = po.get(id);
      assert.equal(e.plural, plural, `${id}: msgid_plural`);
      assert.equal(e.msgstr.length, plural === null ? 1 : 2, `${id}: forms`);
      for (const s of e.msgstr) {
        assert.equal(placeholders(s), placeholders(plural ?? id), `${id} → ${s}`);
      }
    }
  });
});
