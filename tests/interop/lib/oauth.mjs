// The OAuth 2 authorization server: a real oidc-provider (9.x) configured for SMART.
//
// Backend Services (S16-S19): client_credentials with private_key_jwt, keys fetched from
// the client's jwks_uri, RS384 and ES384 assertions, aud = token URL, exp enforced
// (at most 5 minutes ahead), jti replay rejected (oidc-provider's ReplayDetection),
// tokens live 300 s and come without a refresh token.
//
// EHR launch (phase 2): authorization_code + PKCE S256 (oidc-provider knows no `plain`),
// a `launch` parameter that maps to a patient/encounter, SMART context in the token
// response, id_token (RS256) with fhirUser, refresh tokens with offline_access, and an
// interaction that logs a test user in and consents without any form.

import { randomBytes, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
import { parseResourceScope, parseScopeString } from './scopes.mjs';
import { log, loopbackUrlError, sendJson } from './util.mjs';

const MAX_ASSERTION_LIFETIME = 300; // S17: exp at most 5 minutes ahead
const CLOCK_SKEW = 5; // seconds of tolerance for clock differences
const TEST_USER = 'pr1'; // the auto-logged-in user: fhirUser Practitioner/pr1

// oidc-provider's own scope handling is OIDC-centric: it only keeps requested scopes
// that are in its fixed `scopes` list. SMART resource scopes (`system/Appointment.rs`)
// are open-ended, so they are handled the way oidc-provider intends for API scopes:
// as the scopes of a resource server (features.resourceIndicators), the FHIR base.
// getResourceServerInfo grants a requested SMART scope when one of the client's
// registered SMART scopes covers it (same context, type or *, a superset of the
// permissions; so `system/*.cruds` covers `system/Appointment.rs`), and answers
// invalid_scope for any other. The `scopes` list holds only OIDC/launch scopes.
const OIDC_SCOPES = ['openid', 'fhirUser', 'offline_access', 'online_access', 'launch', 'launch/patient', 'launch/encounter'];

/** Does the registered scope `reg` cover the requested scope `req` (both parsed)? */
function covers(reg, req) {
  return (
    reg.context === req.context &&
    (reg.resourceType === '*' || reg.resourceType === req.resourceType) &&
    [...req.perms].every((p) => reg.perms.has(p)) &&
    (reg.query === undefined || reg.query === req.query)
  );
}

/**
 * A plain in-memory adapter (oidc-provider's own one is an LRU capped at 1000 entries).
 * One store per model; expiry is honoured on read.
 */
function makeAdapterClass() {
  const stores = new Map(); // model -> Map(id -> { payload, expiresAt })
  const grants = new Map(); // grantId -> Set of [model, id]
  const storeFor = (model) => {
    if (!stores.has(model)) stores.set(model, new Map());
    return stores.get(model);
  };
  class MemoryAdapter {
    constructor(model) {
      this.model = model;
      this.store = storeFor(model);
    }
    async upsert(id, payload, expiresIn) {
      // Kept for an hour past expiry: oidc-provider checks `exp` itself, and the FHIR
      // server can then tell an expired token from an unknown one.
      this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + (expiresIn + 3600) * 1000 : Infinity });
      if (payload.grantId) {
        if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
        grants.get(payload.grantId).add([this.model, id]);
      }
      if (this.model === 'Session' && payload.uid) storeFor('SessionUid').set(payload.uid, { payload: id, expiresAt: Infinity });
      if (payload.userCode) storeFor('UserCode').set(payload.userCode, { payload: id, expiresAt: Infinity });
    }
    async find(id) {
      const hit = this.store.get(id);
      if (!hit) return undefined;
      if (hit.expiresAt < Date.now()) {
        this.store.delete(id);
        return undefined;
      }
      return hit.payload;
    }
    async findByUid(uid) {
      const id = storeFor('SessionUid').get(uid)?.payload;
      return id ? this.find(id) : undefined;
    }
    async findByUserCode(userCode) {
      const id = storeFor('UserCode').get(userCode)?.payload;
      return id ? this.find(id) : undefined;
    }
    async consume(id) {
      const hit = this.store.get(id);
      if (hit) hit.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id) {
      this.store.delete(id);
    }
    async revokeByGrantId(grantId) {
      for (const [model, id] of grants.get(grantId) ?? []) storeFor(model).delete(id);
      grants.delete(grantId);
    }
  }
  return MemoryAdapter;
}

/**
 * Creates the provider for `issuer` (http://127.0.0.1:P2). `fhirBase` is the FHIR base
 * URL (the SMART `aud`).
 */
export async function createOAuthServer({ issuer, fhirBase }) {
  // The provider's own signing key, generated at start (id_token RS256, S12).
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingJwk = { ...(await exportJWK(privateKey)), kid: `harness-${randomUUID()}`, alg: 'RS256', use: 'sig' };

  const clientScopes = new Map(); // client_id -> the SMART scopes it is registered for
  const approved = new Map(); // client_id -> Set of SMART scopes checked and granted before
  const tokenTtl = new Map(); // client_id -> access token lifetime in seconds (default 300)
  // Test knobs for resource servers other than this harness's FHIR server (Herald's own
  // API): RFC 9068 JWT access tokens (RS256, this provider's key) and another audience.
  const tokenFormat = new Map(); // client_id -> 'jwt' | 'opaque' (default)
  const tokenAudience = new Map(); // client_id -> aud (default the FHIR base)
  const launches = new Map(); // launch token -> { patient, encounter, ... }
  const grantContext = new Map(); // grantId -> launch context (survives refresh)
  let lastLaunch; // context for a standalone launch that asks for launch/patient
  const tokenUrl = `${issuer}/token`;

  const provider = new Provider(issuer, {
    adapter: makeAdapterClass(),
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: OIDC_SCOPES,
    claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
    // SMART puts scope-derived claims (fhirUser) in the id_token (S12).
    conformIdTokenClaims: false,
    clockTolerance: CLOCK_SKEW,
    responseTypes: ['code'],
    pkce: { required: () => true }, // SMART: PKCE for every client; S256 only (S3)
    clientAuthMethods: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'none'],
    enabledJWA: {
      // S17: SMART asymmetric client auth uses RS384 or ES384.
      clientAuthSigningAlgValues: ['RS384', 'ES384'],
      idTokenSigningAlgValues: ['RS256'],
    },
    ttl: {
      // S19: 300 s, or the client's access_token_ttl (via the resource server info)
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      AuthorizationCode: 60,
      IdToken: 300,
      RefreshToken: 24 * 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 24 * 3600,
    },
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // Every token is for the FHIR server; a client need not send `resource`.
        defaultResource: () => fhirBase,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator, client) => {
          if (resourceIndicator !== fhirBase) {
            throw new errors.InvalidTarget(`the only resource here is the FHIR base ${fhirBase}`);
          }
          const registered = parseScopeString(clientScopes.get(client.clientId));
          const requested = (ctx.oidc.params.scope ?? '').split(' ').filter(Boolean);
          if (!requested.some((x) => !OIDC_SCOPES.includes(x)) && ctx.oidc.route === 'token') {
            // Code exchange / refresh without a scope parameter: whatever was approved
            // for this client before (oidc-provider intersects it with the grant).
            return {
              scope: [...registered.map((r) => r.scope), ...(approved.get(client.clientId) ?? [])].join(' '),
              audience: tokenAudience.get(client.clientId) ?? fhirBase,
              accessTokenTTL: tokenTtl.get(client.clientId) ?? 300,
              accessTokenFormat: tokenFormat.get(client.clientId) ?? 'opaque',
            };
          }
          const granted = [];
          for (const scope of requested) {
            if (OIDC_SCOPES.includes(scope)) continue;
            const req = parseResourceScope(scope);
            if (!req || !registered.some((reg) => covers(reg, req))) {
              throw new errors.InvalidScope('requested scope is not allowed', scope);
            }
            granted.push(scope);
          }
          if (!approved.has(client.clientId)) approved.set(client.clientId, new Set());
          granted.forEach((x) => approved.get(client.clientId).add(x));
          return {
            scope: granted.join(' '),
            audience: tokenAudience.get(client.clientId) ?? fhirBase,
            accessTokenTTL: tokenTtl.get(client.clientId) ?? 300, // S19
            // opaque: looked up in this process by the FHIR server
            accessTokenFormat: tokenFormat.get(client.clientId) ?? 'opaque',
          };
        },
      },
    },
    extraParams: {
      // SMART EHR launch: the opaque launch value must be one we handed out (S1, S8).
      launch(ctx, value) {
        if (ctx.oidc.route === 'authorization' && value !== undefined && !launches.has(value)) {
          throw new errors.InvalidRequest('unknown launch value');
        }
      },
      // S7: aud must be the FHIR base URL.
      aud(ctx, value) {
        if (ctx.oidc.route === 'authorization' && value !== undefined && value !== fhirBase) {
          throw new errors.InvalidRequest(`aud must be the FHIR base URL ${fhirBase}`);
        }
      },
    },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, fhirUser: `Practitioner/${id}` }),
    }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Never reuse a grant from an earlier authorization: every authorization goes through
    // the (automatic) consent, so each launch gets its own grant and launch context.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    // Checked after the signature: SMART-specific rules on the client assertion (S17).
    assertJwtClientAuthClaimsAndHeader: async (ctx, claims, header, client) => {
      // S17 header: typ JWT; an optional jku must be the registered JWKS URL.
      if (header.typ !== undefined && header.typ !== 'JWT') {
        throw new errors.InvalidClientAuth(`typ must be JWT, not ${header.typ}`);
      }
      if (header.jku !== undefined && header.jku !== client.jwksUri) {
        throw new errors.InvalidClientAuth(`jku ${header.jku} is not the registered jwks_uri ${client.jwksUri}`);
      }
      // aud = the token URL (S17). For the other endpoints a client authenticates at
      // (introspection, revocation) that endpoint's own URL is accepted as well.
      const accepted = new Set([tokenUrl, ctx.oidc.urlFor(ctx.oidc.route)]);
      const aud = Array.isArray(claims.aud) && claims.aud.length === 1 ? claims.aud[0] : claims.aud;
      if (!accepted.has(aud)) {
        throw new errors.InvalidClientAuth(`aud must be the token endpoint URL ${tokenUrl}`);
      }
      if (claims.sub !== client.clientId) {
        throw new errors.InvalidClientAuth('sub must be the client_id');
      }
      const now = Math.floor(Date.now() / 1000);
      if (claims.exp - now > MAX_ASSERTION_LIFETIME + CLOCK_SKEW) {
        throw new errors.InvalidClientAuth(`exp is more than ${MAX_ASSERTION_LIFETIME} seconds in the future`);
      }
    },
    // oidc-provider refuses loopback addresses for outgoing fetches (SSRF guard). The
    // harness only ever runs on this machine, so it drops that guard and instead allows
    // ONLY loopback URLs (client jwks_uri).
    fetch: async (url, options) => {
      const error = loopbackUrlError(String(url), 'jwks_uri');
      if (error) throw new Error(error);
      const { dispatcher, ...rest } = options;
      void dispatcher;
      return globalThis.fetch(url, rest);
    },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.proxy = false;

  // invalid_client always says "client authentication failed"; add the reason
  // (e.g. "jwt expired", "client assertion tokens must only be used once") so a
  // failing test is readable.
  provider.on('grant.error', (ctx, err) => {
    if (err.error === 'invalid_client' && err.error_detail && ctx.body?.error === 'invalid_client') {
      ctx.body = { ...ctx.body, error_description: `client authentication failed: ${err.error_detail}` };
    }
  });
  provider.on('server_error', (_ctx, err) => log('oidc-provider server_error:', err.stack ?? err));

  // OpenID Connect drops offline_access unless the request says prompt=consent; SMART
  // clients do not send it (S14: refresh tokens come from offline_access). Every
  // authorization here goes through the automatic consent anyway, so say it for them.
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/auth') {
      const q = new URLSearchParams(ctx.querystring);
      if ((q.get('scope') ?? '').split(' ').includes('offline_access') && !q.has('prompt')) {
        q.set('prompt', 'consent');
        ctx.querystring = q.toString();
      }
    }
    await next();
  });

  // Token response: SMART launch context for authorization_code / refresh_token (S11).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !ctx.body?.access_token) return;
    const grant = ctx.oidc.entities?.Grant;
    const grantId = grant?.jti ?? ctx.oidc.entities?.RefreshToken?.grantId;
    if (!grantId) return; // client_credentials: nothing to add
    // S11: `scope` lists everything granted, OIDC/launch scopes and SMART resource scopes
    // (oidc-provider reports only the resource server's share for a resource-bound token).
    const oidcScopes = grant?.getOIDCScope?.()?.split(' ').filter(Boolean) ?? [];
    const scope = [...new Set([...oidcScopes, ...(ctx.body.scope ?? '').split(' ').filter(Boolean)])].join(' ');
    ctx.body = { ...ctx.body, scope, ...(grantContext.get(grantId) ?? {}) };
  });

  // ---- the no-typing interaction: auto-login + auto-consent ----------------------

  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { params, prompt, session } = details;
    const accountId = session?.accountId ?? TEST_USER;
    const requested = (params.scope ?? '').split(' ').filter(Boolean);

    // Consent to everything asked for: OIDC/launch scopes on the grant itself, SMART
    // resource scopes for the FHIR base (already checked by getResourceServerInfo).
    const grant = new provider.Grant({ accountId, clientId: params.client_id });
    grant.addOIDCScope(requested.filter((x) => OIDC_SCOPES.includes(x)).join(' '));
    if (prompt.details?.missingOIDCClaims?.length) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const resourceScopes = requested.filter((x) => !OIDC_SCOPES.includes(x));
    if (resourceScopes.length) grant.addResourceScope(fhirBase, resourceScopes.join(' '));
    const grantId = await grant.save();

    let context;
    if (params.launch) {
      context = launches.get(params.launch);
    } else if (requested.includes('launch/patient') && lastLaunch) {
      context = lastLaunch; // standalone launch: the most recent /_admin/launch patient
    }
    if (context) grantContext.set(grantId, context);

    await provider.interactionFinished(
      req,
      res,
      { login: { accountId }, consent: { grantId } },
      { mergeWithLastSubmission: false }
    );
  }

  // ---- admin: clients and launches -------------------------------------------------

  /**
   * Registers or replaces a client. Backend Services shape:
   *   { client_id, jwks_uri | jwks, scope, token_endpoint_auth_signing_alg?: RS384|ES384,
   *     access_token_ttl?: seconds (default 300) }
   * EHR-launch shape (phase 2):
   *   { client_id, redirect_uris, token_endpoint_auth_method: none|client_secret_basic|private_key_jwt,
   *     client_secret?, scope }
   */
  async function registerClient(body) {
    if (!body || typeof body.client_id !== 'string' || !body.client_id) {
      throw new errors.InvalidClientMetadata('client_id is required');
    }
    if (body.jwks_uri) {
      const error = loopbackUrlError(body.jwks_uri, 'jwks_uri');
      if (error) throw new errors.InvalidClientMetadata(error);
    }
    const interactive = Array.isArray(body.redirect_uris) && body.redirect_uris.length > 0;
    const authMethod = body.token_endpoint_auth_method ?? (interactive && !body.jwks_uri && !body.jwks ? 'client_secret_basic' : 'private_key_jwt');
    const requested = (body.scope ?? '').split(' ').filter(Boolean);
    const bad = requested.filter((x) => !OIDC_SCOPES.includes(x) && !parseResourceScope(x));
    if (bad.length) throw new errors.InvalidClientMetadata(`not SMART scopes: ${bad.join(' ')}`);
    // oidc-provider's `scope` metadata holds the OIDC/launch scopes (openid, fhirUser,
    // launch, offline_access, ...); SMART resource scopes are kept in clientScopes and
    // enforced by getResourceServerInfo. (A client registered with no OIDC scope at all
    // has no `scope` metadata, which oidc-provider reads as "any OIDC scope".)
    const oidcScopes = new Set(requested.filter((x) => OIDC_SCOPES.includes(x)));
    const metadata = {
      client_id: body.client_id,
      ...(oidcScopes.size ? { scope: [...oidcScopes].join(' ') } : {}),
      token_endpoint_auth_method: authMethod,
      grant_types: body.grant_types ?? (interactive ? ['authorization_code', 'refresh_token'] : ['client_credentials']),
      response_types: interactive ? ['code'] : [],
      redirect_uris: interactive ? body.redirect_uris : [],
      ...(body.jwks_uri ? { jwks_uri: body.jwks_uri } : {}),
      ...(body.jwks ? { jwks: body.jwks } : {}),
      ...(body.token_endpoint_auth_signing_alg ? { token_endpoint_auth_signing_alg: body.token_endpoint_auth_signing_alg } : {}),
      ...(body.client_secret ? { client_secret: body.client_secret } : {}),
    };
    // Client.validate runs oidc-provider's own client-metadata checks.
    await provider.Client.validate(metadata);
    await provider.Client.adapter.upsert(metadata.client_id, metadata);
    clientScopes.set(metadata.client_id, requested.filter((x) => !OIDC_SCOPES.includes(x)).join(' '));
    // Test knob: a shorter access-token lifetime, to exercise re-authentication on expiry (S19).
    if (Number.isInteger(body.access_token_ttl) && body.access_token_ttl > 0) {
      tokenTtl.set(metadata.client_id, body.access_token_ttl);
    } else {
      tokenTtl.delete(metadata.client_id);
    }
    // Test knobs: { access_token_format: 'jwt', access_token_audience: 'https://…' }.
    if (body.access_token_format === 'jwt') tokenFormat.set(metadata.client_id, 'jwt');
    else tokenFormat.delete(metadata.client_id);
    if (typeof body.access_token_audience === 'string' && body.access_token_audience) {
      tokenAudience.set(metadata.client_id, body.access_token_audience);
    } else {
      tokenAudience.delete(metadata.client_id);
    }
    return { ...metadata, scope: requested.join(' ') };
  }

  function createLaunch(body) {
    const launch = randomUUID();
    const context = {
      ...(body?.patient ? { patient: body.patient } : {}),
      ...(body?.encounter ? { encounter: body.encounter } : {}),
      need_patient_banner: body?.need_patient_banner ?? true,
      smart_style_url: body?.smart_style_url ?? `${issuer}/smart-style.json`,
      ...(body?.intent ? { intent: body.intent } : {}),
    };
    launches.set(launch, context);
    lastLaunch = context;
    return { launch, ...context };
  }

  /**
   * Bearer token -> { ok, grants, scope, clientId } | { ok: false, reason }.
   * Opaque tokens are looked up in the provider's own store (ClientCredentials for
   * backend tokens, AccessToken for launch tokens).
   */
  async function verifyToken(value) {
    for (const Model of [provider.ClientCredentials, provider.AccessToken]) {
      const token = await Model.find(value, { ignoreExpiration: true });
      if (!token) continue;
      if (token.isExpired) return { ok: false, reason: 'expired' };
      return { ok: true, scope: token.scope ?? '', clientId: token.clientId, grants: parseScopeString(token.scope) };
    }
    return { ok: false, reason: 'unknown' };
  }

  // ---- HTTP --------------------------------------------------------------------------

  const providerCallback = provider.callback();
  async function handle(req, res) {
    const url = new URL(req.url, issuer);
    try {
      if (url.pathname.startsWith('/interaction/')) {
        await interaction(req, res);
        return;
      }
      if (url.pathname === '/smart-style.json') {
        sendJson(res, 200, { color_background: '#edeae3', color_highlight: '#2a6dbb', font_family_base: 'sans-serif' });
        return;
      }
      providerCallback(req, res);
    } catch (err) {
      log('oauth request failed:', err.stack ?? err);
      if (!res.headersSent) sendJson(res, err.statusCode ?? 500, { error: err.error ?? 'server_error', error_description: err.error_description ?? err.message });
    }
  }

  return { provider, handle, registerClient, createLaunch, verifyToken };
}
