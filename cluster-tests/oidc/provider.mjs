// A real OpenID provider for Gatehouse's tests, on `oidc-provider` (panva), listening on
// 127.0.0.1 only.
//
//   node provider.mjs PORT CONFIG.json      (PORT 0: any free port)
//
// Prints `OIDC READY <port>` once it listens; exits when its stdin closes, so it never
// outlives the test process that started it.
//
// CONFIG.json:
//   {
//     "issuer": "http://127.0.0.1:PORT",          // optional: that, with the port it got
//     "clients": [{ "client_id": "...", "client_secret": "...",
//                   "redirect_uris": ["..."], "grant_types": ["authorization_code", "refresh_token"],
//                   "token_endpoint_auth_method": "client_secret_basic" }],   // or client_secret_post
//     "access_token_ttl_seconds": 3600,
//     "refresh_token_ttl_seconds": 86400,
//     "rotate_refresh_tokens": true,
//     "extra_scopes": ["repo.read"]
//   }
//
// Behaviour:
// - Authorization code flow only; PKCE with S256 is required of every client (a request
//   without it is refused with `invalid_request`). `nonce` is put in the ID token.
// - Scopes: openid, email, profile, offline_access and the configured `extra_scopes` (others
//   are dropped from the grant). offline_access is granted only with prompt=consent (the OIDC
//   rule), but refresh tokens do not depend on it (below). The ID token carries the email and
//   profile claims itself (not only the userinfo endpoint at /me does). ID tokens: RS256.
// - A refresh token is issued on every code exchange of a client allowed the refresh_token
//   grant, whether or not offline_access was asked for. With `rotate_refresh_tokens` (the
//   default) every refresh answers a new refresh token and spends the old one; presenting a
//   spent one again is reuse: the provider revokes the whole grant (`invalid_grant`).
// - Login and consent happen without any form: the interaction signs in as the account set
//   with POST /test/next-account (default sub "user-1") and grants every scope asked for.
//   A browser whose provider session is another account's signs in again.
//
// Test control, same port (JSON in, JSON out):
//   POST /test/next-account  {sub, email, email_verified, name}   the account of the next logins
//   POST /test/clients       {client_id, client_secret, redirect_uris, grant_types}  add/replace
//   POST /test/revoke        {sub}      destroys every grant of sub and its tokens -> {revoked}
//   POST /test/outage        {enabled}  the token endpoint answers 503 while enabled
//   POST /test/token-delay   {ms}       the token endpoint waits that long before answering
//   GET  /test/stats         counters of the token endpoint (see `stats` below)
//   GET  /test/authorizations  every authorization request seen: client, scope, PKCE, nonce
//   POST /test/tamper        {mode}     the next code grant's ID token is re-signed with one
//                            claim wrong: "nonce", "audience", "issuer", "expired", or signed
//                            with a key the JWKS does not list: "signature" (null: off)

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import { SignJWT, decodeJwt, importJWK } from 'jose';
import Provider, { interactionPolicy } from 'oidc-provider';

const [portArg, configPath] = process.argv.slice(2);
if (portArg === undefined || configPath === undefined) {
  console.error('usage: node provider.mjs PORT CONFIG.json');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));

// ---- state the test controls and reads --------------------------------------------------

const accounts = new Map(); // sub -> claims, as last set
let nextAccount;
function chooseAccount({ sub, ...claims }) {
  nextAccount = { sub, ...claims };
  accounts.set(sub, claims);
}
chooseAccount({ sub: 'user-1', email: 'user-1@example.test', email_verified: true, name: 'User One' });
const grantsOf = new Map(); // sub -> Set of grant ids
let outage = false;
let tokenDelayMs = 0;
let tamperMode = null; // one-shot, see /test/tamper
const stats = {
  code_grants_served: 0,
  refresh_grants_served: 0,
  refresh_grants_refused: 0,
  token_requests_refused_by_outage: 0,
  token_requests_in_flight: 0,
  max_concurrent_token_requests: 0,
};
const authorizations = [];

// ---- storage: one in-memory map for every model (the library's own keeps only 1000) -------

const store = new Map(); // `${model}:${id}` -> { payload, expiresAt }

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    store.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    const entry = store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid) return this.find(entry.payload.jti);
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.model}:`) && entry.payload.userCode === userCode) return this.find(entry.payload.jti);
    }
    return undefined;
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of store) {
      if (entry.payload.grantId === grantId) store.delete(key);
    }
  }
}

function clientMetadata(client) {
  return {
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    grant_types: client.grant_types ?? ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
  };
}

// ---- the provider ------------------------------------------------------------------------

// A login is needed when the browser has no provider session, or one of another account
// than the one the test chose; after the login of this interaction, none.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'test_next_account',
  'the test chose another account',
  (ctx) => !ctx.oidc.result?.login && ctx.oidc.session.accountId !== nextAccount.sub,
));

function rsaJwk(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}
const signingKey = rsaJwk('test-rs256');
// Signs with the same kid as the real key, but the JWKS never lists it.
const foreignKey = rsaJwk('test-rs256');

// The ID token of a code grant, re-signed with the claim `mode` names made wrong.
async function tamperIdToken(idToken, mode) {
  const claims = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  if (mode === 'nonce') claims.nonce = 'not-the-nonce-of-this-flow';
  if (mode === 'audience') claims.aud = 'another-client';
  if (mode === 'issuer') claims.iss = 'http://127.0.0.1:1/another-issuer';
  if (mode === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
  const key = await importJWK(mode === 'signature' ? foreignKey : signingKey, 'RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-rs256', typ: 'JWT' }).sign(key);
}

function buildProvider(issuer) {
  return new Provider(issuer, {
    adapter: MapAdapter,
    clients: (config.clients ?? []).map(clientMetadata),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true, methods: ['S256'] },
    scopes: ['openid', 'email', 'profile', 'offline_access', ...(config.extra_scopes ?? [])],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    responseTypes: ['code'],
    ttl: {
      AccessToken: config.access_token_ttl_seconds ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Grant: 14 * 24 * 3600,
      Interaction: 600,
      Session: 14 * 24 * 3600,
      RefreshToken: config.refresh_token_ttl_seconds ?? 14 * 24 * 3600,
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => config.rotate_refresh_tokens ?? true,
    expiresWithSession: async () => false,
    clientBasedCORS: () => false,
    interactions: {
      policy,
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    findAccount: (ctx, sub) => ({
      accountId: sub,
      claims: () => ({ sub, ...(accounts.get(sub) ?? {}) }),
    }),
  });
}

// One pass of an interaction: sign in as the next account, grant every scope asked for.
async function interact(provider, req, res) {
  const interaction = await provider.interactionDetails(req, res);
  const { prompt, params, session, grantId } = interaction;
  const accountId = prompt.name === 'login' || !session ? nextAccount.sub : session.accountId;
  if (prompt.name === 'login' && session?.accountId && session.accountId !== accountId) {
    // Another account's provider session: end it here, or the provider would ask the
    // browser to confirm a logout first.
    store.delete(`Session:${session.cookie}`);
    delete interaction.session;
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  }
  const existing = grantId && (await provider.Grant.find(grantId));
  const grant = existing?.accountId === accountId
    ? existing
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(params.scope);
  const savedGrantId = await grant.save();
  if (!grantsOf.has(accountId)) grantsOf.set(accountId, new Set());
  grantsOf.get(accountId).add(savedGrantId);
  const result = { consent: { grantId: savedGrantId } };
  if (prompt.name === 'login') result.login = { accountId };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

async function revokeGrants(provider, sub) {
  const grants = grantsOf.get(sub) ?? new Set();
  for (const grantId of grants) {
    const grant = await provider.Grant.find(grantId);
    if (grant) await grant.destroy();
    await new MapAdapter('any').revokeByGrantId(grantId);
  }
  grantsOf.delete(sub);
  return grants.size;
}

// ---- HTTP --------------------------------------------------------------------------------

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try {
        resolve(body ? JSON.parse(body) : {});
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function testControl(provider, req, res, path) {
  const route = `${req.method} ${path}`;
  switch (route) {
    case 'POST /test/next-account': {
      const account = await readJson(req);
      if (typeof account.sub !== 'string' || account.sub === '') return sendJson(res, 400, { error: 'sub required' });
      chooseAccount(account);
      return sendJson(res, 200, nextAccount);
    }
    case 'POST /test/clients': {
      const client = await readJson(req);
      await new MapAdapter('Client').upsert(client.client_id, clientMetadata(client));
      return sendJson(res, 200, { client_id: client.client_id });
    }
    case 'POST /test/revoke': {
      const { sub } = await readJson(req);
      return sendJson(res, 200, { revoked: await revokeGrants(provider, sub) });
    }
    case 'POST /test/outage': {
      outage = Boolean((await readJson(req)).enabled);
      return sendJson(res, 200, { outage });
    }
    case 'POST /test/token-delay': {
      tokenDelayMs = Number((await readJson(req)).ms) || 0;
      return sendJson(res, 200, { ms: tokenDelayMs });
    }
    case 'POST /test/tamper': {
      const { mode } = await readJson(req);
      if (![null, 'nonce', 'audience', 'issuer', 'expired', 'signature'].includes(mode ?? null)) {
        return sendJson(res, 400, { error: `unknown tamper mode ${mode}` });
      }
      tamperMode = mode ?? null;
      return sendJson(res, 200, { mode: tamperMode });
    }
    case 'GET /test/stats':
      return sendJson(res, 200, stats);
    case 'GET /test/authorizations':
      return sendJson(res, 200, authorizations);
    default:
      return sendJson(res, 404, { error: `no test route ${route}` });
  }
}

function recordAuthorization(url) {
  const query = url.searchParams;
  if (!query.has('client_id')) return; // the resume leg of an interaction
  authorizations.push({
    client_id: query.get('client_id'),
    redirect_uri: query.get('redirect_uri'),
    scope: query.get('scope'),
    pkce: query.has('code_challenge') && query.get('code_challenge_method') === 'S256',
    code_challenge_method: query.get('code_challenge_method'),
    nonce: query.has('nonce'),
    state: query.has('state'),
    prompt: query.get('prompt'),
  });
}

async function tokenEndpoint(handler, req, res) {
  if (outage) {
    stats.token_requests_refused_by_outage += 1;
    return sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'test outage' });
  }
  stats.token_requests_in_flight += 1;
  stats.max_concurrent_token_requests = Math.max(stats.max_concurrent_token_requests, stats.token_requests_in_flight);
  res.on('close', () => { stats.token_requests_in_flight -= 1; });
  if (tokenDelayMs > 0) await new Promise((resolve) => { setTimeout(resolve, tokenDelayMs); });
  return handler(req, res);
}

const server = createServer();
server.listen(Number(portArg), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = config.issuer ?? `http://127.0.0.1:${port}`;
  const provider = buildProvider(issuer);
  provider.on('grant.success', (ctx) => {
    if (ctx.oidc.params.grant_type === 'refresh_token') stats.refresh_grants_served += 1;
    if (ctx.oidc.params.grant_type === 'authorization_code') stats.code_grants_served += 1;
  });
  provider.on('grant.error', (ctx) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token') stats.refresh_grants_refused += 1;
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  provider.use(async (ctx, next) => {
    await next();
    if (tamperMode && ctx.oidc?.route === 'token' && ctx.body?.id_token
        && ctx.oidc.params?.grant_type === 'authorization_code') {
      const mode = tamperMode;
      tamperMode = null;
      ctx.body = { ...ctx.body, id_token: await tamperIdToken(ctx.body.id_token, mode) };
    }
  });
  const handler = provider.callback();

  server.on('request', (req, res) => {
    const url = new URL(req.url, issuer);
    const fail = (error) => {
      console.error(error);
      if (!res.headersSent) sendJson(res, 500, { error: String(error) });
    };
    if (url.pathname.startsWith('/test/')) {
      testControl(provider, req, res, url.pathname).catch(fail);
    } else if (url.pathname.startsWith('/interaction/')) {
      interact(provider, req, res).catch(fail);
    } else if (url.pathname === '/token') {
      tokenEndpoint(handler, req, res).catch(fail);
    } else {
      if (url.pathname === '/auth') recordAuthorization(url);
      handler(req, res);
    }
  });
  console.log(`OIDC READY ${port}`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
