// A real OpenID Provider for the integration tests: panva's oidc-provider 9.x with PKCE
// enforced and the built-in development login/consent forms (devInteractions).
//
// Listens on 127.0.0.1:0 and prints {"issuer": "http://127.0.0.1:PORT"} as the first stdout line.
//
// Environment:
//   OIDC_CLIENTS  JSON list of {client_id, client_secret, redirect_uris}
//                 (default: ml-app / ml-secret / http://127.0.0.1:9/callback)
//   OIDC_USERS    JSON object login -> claims, e.g.
//                 {"alice": {"email": "alice@corp.test", "groups": ["ML-Admins"],
//                            "realm_access": {"roles": ["researcher"]}}}
//                 The login is the subject (sub). Any password is accepted; unknown logins are refused.
//
// Exits 0 on SIGTERM / SIGINT.
import { randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

function parseEnvJson(name, fallback) {
  const raw = process.env[name];
  if (!raw) return fallback;
  try {
    return JSON.parse(raw);
  } catch (err) {
    console.error(`invalid JSON in ${name}: ${err.message}`);
    process.exit(2);
  }
}

const clients = parseEnvJson('OIDC_CLIENTS', [
  { client_id: 'ml-app', client_secret: 'ml-secret', redirect_uris: ['http://127.0.0.1:9/callback'] },
]).map((c) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));
const users = parseEnvJson('OIDC_USERS', {});

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients,
    pkce: { required: () => true },
    conformIdTokenClaims: false, // scope claims also go into the ID token
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'given_name', 'family_name'],
      groups: ['groups'],
      roles: ['realm_access'],
    },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, sub) {
      if (!Object.prototype.hasOwnProperty.call(users, sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { ...users[sub], sub };
        },
      };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_detail || ''));

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
