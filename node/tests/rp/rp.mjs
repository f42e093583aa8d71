// A relying party built on openid-client (a certified OpenID Connect client library),
// driving Gatehouse's OpenID provider end to end: discovery, authorization code with PKCE
// (S256), the browser's sign-in and consent through the hosted pages' HTML forms, token,
// userinfo, refresh, introspection, code replay and revocation. It prints one JSON document
// of what each step returned, for the Rust test to assert on.
//
// Environment: GATEHOUSE_ISSUER, RP_CLIENT_ID, RP_CLIENT_SECRET (empty for a public client),
// RP_REDIRECT_URI, RP_POST_LOGOUT_URI, RP_EMAIL, RP_PASSWORD.
import * as client from 'openid-client';

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const issuer = new URL(env('GATEHOUSE_ISSUER'));
const clientId = env('RP_CLIENT_ID');
const secret = env('RP_CLIENT_SECRET');
const redirectUri = env('RP_REDIRECT_URI');
const email = env('RP_EMAIL');
const password = env('RP_PASSWORD');
const postLogout = env('RP_POST_LOGOUT_URI');

const metadata = { id_token_signed_response_alg: 'EdDSA' };
if (!secret) metadata.token_endpoint_auth_method = 'none';
const config = await client.discovery(
  issuer,
  clientId,
  metadata,
  secret ? client.ClientSecretBasic(secret) : client.None(),
  { execute: [client.allowInsecureRequests] },
);

// The browser: a cookie jar over fetch, following redirects by hand until the provider
// sends it to the client's redirect URI.
const jar = new Map();
const pages = [];
async function browse(url, init = {}) {
  const headers = new Headers(init.headers ?? {});
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const cookie of response.headers.getSetCookie()) {
    const [pair] = cookie.split(';');
    const at = pair.indexOf('=');
    const [name, value] = [pair.slice(0, at).trim(), pair.slice(at + 1)];
    if (value === '' || /max-age=0/i.test(cookie)) jar.delete(name);
    else jar.set(name, value);
  }
  return response;
}
// Attribute values as the template engine escaped them (`&amp;` last, so nothing is
// decoded twice).
const unescape = (text) => text.replaceAll('&quot;', '"').replaceAll('&#x27;', "'")
  .replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&#x2f;', '/').replaceAll('&amp;', '&');
const field = (html, name) => {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!match) throw new Error(`no ${name} field in the page`);
  return unescape(match[1]);
};
const action = (html) => new URL(unescape(html.match(/<form method="post" action="([^"]+)"/)[1]), issuer);

async function authorize(params) {
  let response = await browse(client.buildAuthorizationUrl(config, params));
  for (let hops = 0; hops < 10; hops += 1) {
    if (response.status >= 300 && response.status < 400) {
      const location = new URL(response.headers.get('location'), issuer);
      if (location.href.startsWith(redirectUri)) return location;
      response = await browse(location);
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`page ${response.status} at ${response.url}: ${html.slice(0, 300)}`);
    const form = new URLSearchParams({ csrf: field(html, 'csrf') });
    if (html.includes('name="password"')) {
      pages.push('sign-in');
      form.set('email', email);
      form.set('password', password);
      form.set('return_to', field(html, 'return_to'));
    } else if (html.includes('name="decision"')) {
      pages.push('consent');
      form.set('request', field(html, 'request'));
      form.set('decision', 'allow');
    } else {
      throw new Error(`unexpected page: ${html.slice(0, 300)}`);
    }
    response = await browse(action(html), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
  }
  throw new Error('too many redirects');
}

async function signIn() {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const callback = await authorize({
    redirect_uri: redirectUri,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const checks = { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true };
  const tokens = await client.authorizationCodeGrant(config, callback, checks);
  return { callback, checks, tokens };
}

const failure = async (promise) => {
  try {
    await promise;
    return 'accepted';
  } catch (error) {
    return error.error ?? error.code ?? String(error);
  }
};

const out = { discovery: { issuer: config.serverMetadata().issuer } };
const first = await signIn();
const claims = first.tokens.claims();
out.pages = [...pages];
out.id_token = { sub: claims.sub, aud: claims.aud, nonce_checked: true, amr: claims.amr, sid: claims.sid, email: claims.email, auth_time: claims.auth_time };
out.scope = first.tokens.scope;
out.userinfo = await client.fetchUserInfo(config, first.tokens.access_token, claims.sub);
const refreshed = await client.refreshTokenGrant(config, first.tokens.refresh_token);
out.refresh = { rotated: refreshed.refresh_token !== first.tokens.refresh_token, id_token_sub: refreshed.claims()?.sub };
if (secret) out.introspection = await client.tokenIntrospection(config, refreshed.access_token);
out.code_replay = await failure(client.authorizationCodeGrant(config, first.callback, first.checks));
if (secret) out.introspection_after_replay = await client.tokenIntrospection(config, refreshed.access_token);
out.refresh_after_replay = await failure(client.refreshTokenGrant(config, refreshed.refresh_token));

pages.length = 0;
const second = await signIn();
out.second_pages = [...pages];
await client.tokenRevocation(config, second.tokens.refresh_token);
out.refresh_after_revocation = await failure(client.refreshTokenGrant(config, second.tokens.refresh_token));
// RP-initiated logout: without a hint the person is asked; with this person's ID token as
// the hint the browser is signed out at once and sent to the registered address with state.
pages.length = 0;
const third = await signIn();
const unhinted = await browse(client.buildEndSessionUrl(config, { post_logout_redirect_uri: postLogout }));
const asked = await unhinted.text();
out.end_session_without_hint = { status: unhinted.status, asks: asked.includes('name="decision"') };
const hinted = await browse(client.buildEndSessionUrl(config, {
  id_token_hint: third.tokens.id_token,
  post_logout_redirect_uri: postLogout,
  state: 'bye',
}));
out.end_session = { status: hinted.status, location: hinted.headers.get('location') };
out.refresh_after_end_session = await failure(client.refreshTokenGrant(config, third.tokens.refresh_token));
pages.length = 0;
await signIn();
out.pages_after_end_session = [...pages];
console.log(JSON.stringify(out));
