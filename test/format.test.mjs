// Unit tests of src/format.ts: the readable line of each refusal of an /hdh/* route, the
// server's one-line reason, numbers and dates in the display language, and whileBusy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { englishTrans } from '../lib/catalogue-model.js';
import {
  errorText,
  formatDate,
  formatDateTime,
  formatNumber,
  formatPercent,
  languageOf,
  oneLine,
  refusalMessage,
  serverReason,
  whileBusy
} from '../lib/format.js';

/** A translator as JupyterLab's TranslationBundle: a locale and a catalogue (else English). */
function bundle(locale, catalogue = {}) {
  const fill = (s, args) => s.replace(/%(\d+)/g, (m, n) => String(args[Number(n) - 1] ?? m));
  return {
    getLocale: () => locale,
    __: (id, ...args) => fill(catalogue[id] ?? id, args),
    _n: (id, plural, n, ...args) => fill(n === 1 ? id : plural, args),
    _p: (_c, id, ...args) => fill(id, args)
  };
}

// the guard's answer past the budget (jupyterlab_hdh/guard/display.py, proxy.py write_error)
const GUARD_REASON =
  'daily display budget reached: 4.1 MiB of sandbox output shown to alice today (budget ' +
  '4.0 MiB). Nothing more is shown until tomorrow (UTC) or until an administrator raises ' +
  'it (hdh guard raise-budget alice). Results you need can leave through an export request.';
const GUARD_429 = JSON.stringify({ message: GUARD_REASON, reason: GUARD_REASON, status: 429 });

describe('serverReason', () => {
  it("reads FastAPI's detail, jupyter_server's message and the guard's reason", () => {
    assert.equal(serverReason('{"detail": "no dataset named x"}'), 'no dataset named x');
    assert.equal(serverReason('{"message": "forbidden", "reason": null}'), 'forbidden');
    assert.equal(
      serverReason('{"reason": "sandbox not running", "status": 503}'),
      'sandbox not running'
    );
    assert.equal(serverReason(GUARD_429), GUARD_REASON);
  });

  it("joins FastAPI's validation errors", () => {
    const body = JSON.stringify({
      detail: [
        { loc: ['body', 'title'], msg: 'Field required', type: 'missing' },
        { loc: ['body', 'role'], msg: 'Input should be a valid role', type: 'enum' }
      ]
    });
    assert.equal(serverReason(body), 'Field required; Input should be a valid role');
    assert.equal(
      serverReason(body, { fields: true }),
      'title: Field required; role: Input should be a valid role'
    );
  });

  it("keeps a text answer's first line, never markup, and makes one line of it", () => {
    assert.equal(serverReason('\n  sandbox not running\nTraceback: …\n'), 'sandbox not running');
    assert.equal(serverReason('<html><body><h1>404 Not Found</h1></body></html>'), '');
    assert.equal(serverReason(''), '');
    assert.equal(serverReason('{"detail": "a\\n  b\\tc"}'), 'a b c');
    assert.equal(serverReason('{"unrelated": 1}'), '');
    const long = serverReason(JSON.stringify({ detail: 'x'.repeat(1000) }));
    assert.ok(long.length <= 400 && long.endsWith('…'), long.length);
  });
});

describe('refusalMessage', () => {
  it('says what the usual refusals mean, with the server reason', () => {
    const cases = [
      [
        0,
        'TypeError: Failed to fetch',
        'The server could not be reached: check the connection, then try again.'
      ],
      [401, '', 'Your session has ended: reload the page to sign in again.'],
      [403, 'not authenticated', 'Your session has ended: reload the page to sign in again.'],
      [403, 'only the lead may see it', 'Not allowed: only the lead may see it'],
      [403, '', 'Not allowed.'],
      [404, 'no dataset named x', 'Not found: no dataset named x'],
      [
        409,
        'request #3 is already submitted',
        'Not possible in the current state: request #3 is already submitted'
      ],
      [413, 'the file is over 50 MiB', 'Too large: the file is over 50 MiB'],
      [
        429,
        'daily quota of 20 file additions used',
        'Limit reached: daily quota of 20 file additions used'
      ],
      [
        502,
        '',
        "The sandbox's HDH service (its API bridge) is down or absent: try again in a moment."
      ],
      [
        503,
        'sandbox not running',
        "The sandbox's HDH service (its API bridge) is down or absent: sandbox not running"
      ],
      [500, '', 'The server failed (HTTP 500): try again later.'],
      [400, 'the body is not JSON', 'Refused: the body is not JSON'],
      [418, '', 'The request was refused (HTTP 418).']
    ];
    for (const [status, reason, expected] of cases) {
      assert.equal(refusalMessage(status, reason, englishTrans), expected, `${status} ${reason}`);
    }
  });

  it("words the guard's display-budget refusal once, with who can raise it", () => {
    const m = refusalMessage(429, serverReason(GUARD_429), englishTrans);
    assert.ok(m.startsWith('Daily display budget reached: 4.1 MiB of sandbox output'), m);
    assert.equal(m.match(/display budget reached/gi).length, 1, m);
    assert.ok(m.includes('hdh guard raise-budget alice'), m);
    assert.ok(!m.includes('{') && !m.includes('429') && !m.includes('\n'), m);
  });

  it('is in the language of the translator', () => {
    const fr = bundle('fr-FR', {
      'Daily display budget reached: %1': "Budget d'affichage quotidien atteint : %1",
      'Not found: %1': 'Introuvable : %1'
    });
    assert.equal(refusalMessage(404, 'no dataset x', fr), 'Introuvable : no dataset x');
    assert.ok(
      refusalMessage(429, GUARD_REASON, fr).startsWith("Budget d'affichage quotidien atteint : 4.1")
    );
  });
});

describe('errorText', () => {
  it("asks a refusal for its own words, else reads the error's message", () => {
    const refusal = { describe: t => t.__('Not found: %1', 'x') };
    assert.equal(errorText(refusal, englishTrans), 'Not found: x');
    assert.equal(
      errorText(new Error('the notebook\nis not loaded'), englishTrans),
      'the notebook is not loaded'
    );
    assert.equal(errorText('plain', englishTrans), 'plain');
  });
});

describe('numbers and dates in the display language', () => {
  it("takes the translator's language, English without one", () => {
    assert.equal(languageOf(bundle('fr-FR')), 'fr-FR');
    assert.equal(languageOf(bundle('fr_FR')), 'fr-FR');
    assert.equal(languageOf(englishTrans), 'en');
    assert.equal(
      languageOf(bundle('default')),
      'default'.length ? languageOf(bundle('default')) : ''
    );
    assert.equal(languageOf(bundle('not a language!')), 'en');
  });

  it('groups thousands as the language does', () => {
    assert.equal(formatNumber(1234567, englishTrans), '1,234,567');
    // French groups with a narrow no-break space
    assert.equal(formatNumber(1234567, bundle('fr-FR')), '1\u202f234\u202f567');
    assert.equal(formatNumber(1234.5, bundle('de-DE')), '1.234,5');
    assert.equal(formatNumber(null, bundle('fr-FR')), '—');
    assert.equal(formatPercent(12.5, englishTrans), '12.5%');
    assert.equal(formatPercent(12.5, bundle('fr-FR')), '12,5\u00a0%');
  });

  it('writes days and moments in the language, moments in UTC', () => {
    assert.equal(formatDate('2026-12-04', englishTrans), 'Dec 4, 2026');
    assert.equal(formatDate('2026-12-04', bundle('fr-FR')), '4 déc. 2026');
    assert.equal(formatDate('not a date', bundle('fr-FR')), 'not a date');
    const fr = formatDateTime('2026-12-04T09:05:07.123456+00:00', bundle('fr-FR'));
    assert.equal(fr, '4 déc. 2026, 09:05:07 UTC');
    assert.equal(
      formatDateTime('2026-12-04T09:05:07', englishTrans),
      'Dec 4, 2026, 9:05:07 AM UTC'
    );
  });
});

describe('oneLine', () => {
  it('collapses whitespace', () => {
    assert.equal(oneLine('  a \n b  '), 'a b');
  });
});

describe('whileBusy', () => {
  /** What whileBusy touches of a button. */
  function fakeButton(text) {
    const classes = new Set();
    const attrs = new Map();
    return {
      disabled: false,
      textContent: text,
      classList: {
        add: c => classes.add(c),
        remove: c => classes.delete(c),
        contains: c => classes.has(c)
      },
      setAttribute: (k, v) => attrs.set(k, v),
      removeAttribute: k => attrs.delete(k),
      attrs
    };
  }

  it('disables the buttons while the action runs, then restores them', async () => {
    const submit = fakeButton('Submit');
    const other = fakeButton('Withdraw');
    let release;
    const running = whileBusy(
      [submit, other],
      () => new Promise(r => (release = r)),
      'Submitting…'
    );
    assert.equal(submit.disabled, true);
    assert.equal(other.disabled, true);
    assert.equal(submit.textContent, 'Submitting…');
    assert.equal(submit.attrs.get('aria-busy'), 'true');
    // a second click while it runs does not start it again
    let second = false;
    assert.equal(
      await whileBusy([submit], async () => {
        second = true;
      }),
      undefined
    );
    assert.equal(second, false);
    release(42);
    assert.equal(await running, 42);
    assert.equal(submit.disabled, false);
    assert.equal(submit.textContent, 'Submit');
    assert.equal(submit.attrs.has('aria-busy'), false);
  });

  it('enables them again after a failure, which it passes on', async () => {
    const b = fakeButton('Add');
    await assert.rejects(
      whileBusy([b], async () => {
        throw new Error('Too large: the file is over 50 MiB');
      }),
      /Too large/
    );
    assert.equal(b.disabled, false);
    assert.equal(b.classList.contains('jp-hdh-busy'), false);
  });
});
