// A real OpenID Connect provider for HDH's single sign-on tests (tests/hub/test_oidc_login.py):
// the certified oidc-provider, on http://127.0.0.1:PORT, with its own login and consent forms.
//
//   node provider.mjs PORT CONFIG.json
//
// CONFIG.json: {"clients": [oidc-provider client metadata...],
//               "accounts": {"NAME": {"password": "...", "groups": ["..."], "email": "..."}}}
// The file is read again on every login and every userinfo request, so a test changes a
// person's password or groups (what an identity provider's administrator does) by rewriting it.
// Prints "oidc-provider ready on ISSUER" once it listens. Test use only: accounts in clear.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import * as oidc from 'oidc-provider';

const [port, configPath] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const load = () => JSON.parse(readFileSync(configPath, 'utf8'));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;

const provider = new oidc.Provider(issuer, {
  clients: load().clients,
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  async findAccount(ctx, sub) {
    const account = load().accounts[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        const now = load().accounts[sub] || {};
        return {
          sub,
          preferred_username: now.preferred_username ?? sub,
          name: now.name ?? sub,
          email: now.email ?? `${sub}@example.org`,
          email_verified: true,
          groups: now.groups ?? [],
        };
      },
    };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
});

const readForm = (req) => new Promise((resolve, reject) => {
  let data = '';
  req.on('data', (chunk) => { data += chunk; if (data.length > 65536) req.destroy(); });
  req.on('end', () => resolve(new URLSearchParams(data)));
  req.on('error', reject);
});

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params, session } = details;
  if (req.method === 'GET') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    if (prompt.name === 'login') {
      res.end(page('Sign in', `<form method="post" action="/interaction/${uid}/login">
        <input name="username" autocomplete="username"><input name="password" type="password">
        <button type="submit">Sign in</button></form>`));
    } else {
      res.end(page('Authorize', `<p>${escape(params.client_id)} asks for ${escape(params.scope)}</p>
        <form method="post" action="/interaction/${uid}/confirm"><button type="submit">Continue</button></form>`));
    }
    return;
  }
  const form = await readForm(req);
  if (action === 'login') {
    const name = form.get('username') || '';
    const account = Object.hasOwn(load().accounts, name) ? load().accounts[name] : undefined;
    if (!account || account.password !== form.get('password')) {
      res.statusCode = 401;
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(page('Sign in', '<p>Wrong user name or password.</p>'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: name } }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  res.statusCode = 400;
  res.end('unexpected interaction step');
}

const callback = provider.callback();
const server = createServer((req, res) => {
  const m = /^\/interaction\/([\w-]+)(?:\/(login|confirm))?$/.exec(req.url.split('?')[0]);
  if (!m) return callback(req, res);
  interaction(req, res, m[1], m[2]).catch((err) => {
    res.statusCode = 400;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(`interaction failed: ${err.message}`);
  });
  return undefined;
});
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider ready on ${issuer}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
