// The FHIR R4 HTTP layer: content negotiation (strict about fhirVersion), bearer-token
// checks, then @medplum/fhir-router's FhirRouter over the HarnessRepository. This file
// adds only what an HTTP server has to add around the router: status codes, ETag,
// Location, Last-Modified, Prefer, absolute paging links, /metadata and
// /.well-known/smart-configuration.

import {
  OperationOutcomeError,
  allOk,
  badRequest,
  forbidden,
  formatSearchQuery,
  getStatus,
  globalSchema,
  normalizeOperationOutcome,
  parseSearchRequest,
  serverError,
  unauthorized,
  unauthorizedTokenExpired,
} from '@medplum/core';
import { FhirRouter } from '@medplum/fhir-router';
import { allows, letterFor } from './scopes.mjs';
import { TOPICS } from './subscriptions.mjs';
import { log, readBody, sendJson } from './util.mjs';

export const FHIR_PATH = '/fhir/R4';
const FHIR_JSON = 'application/fhir+json';
const JSON_TYPES = new Set([FHIR_JSON, 'application/json', 'application/*', '*/*']);
// Search parameter types that @medplum/core's matchesSearchRequest can evaluate in memory.
const MATCHABLE = new Set(['reference', 'string', 'uri', 'token', 'date']);
const SEARCH_CONTROL = new Set([
  '_count', '_offset', '_sort', '_total', '_summary', '_elements', '_fields', '_include',
  '_revinclude', '_format', '_pretty', '_cursor', '_type', '_',
]);

/** The SMART capabilities this harness advertises (SMART App Launch 2.2, S4/S5). */
export const SMART_CAPABILITIES = [
  'client-confidential-asymmetric',
  'permission-v2',
  'permission-v1',
  'launch-ehr',
  'launch-standalone',
  'context-ehr-patient',
  'sso-openid-connect',
  'permission-offline',
];

export const SCOPES_SUPPORTED = [
  'openid',
  'fhirUser',
  'launch',
  'launch/patient',
  'offline_access',
  'system/*.cruds',
  'system/*.rs',
  'system/Appointment.rs',
  'system/MedicationRequest.rs',
  'system/Patient.rs',
  'system/Subscription.cruds',
  'system/*.read',
  'system/*.write',
  'user/*.cruds',
  'patient/*.rs',
];

export class FhirServer {
  /**
   * @param {object} o
   * @param {import('./repo.mjs').HarnessRepository} o.repo
   * @param {import('./subscriptions.mjs').SubscriptionEngine} o.engine
   * @param {(token: string) => Promise<{ok: boolean, grants?: any[], reason?: string}>} o.verifyToken
   * @param {boolean} o.noAuth
   */
  constructor({ repo, engine, verifyToken, noAuth }) {
    this.repo = repo;
    this.engine = engine;
    this.verifyToken = verifyToken;
    this.noAuth = noAuth;
    this.requests = [];
    this.base = ''; // http://127.0.0.1:P1/fhir/R4, set by setBase
    this.issuer = '';
    this.router = new FhirRouter();
    this.#addOperations();
  }

  setBase(base, issuer) {
    this.base = base;
    this.issuer = issuer;
  }

  // ---- Backport operations, routed through FhirRouter (N10, N11) ----------------

  #addOperations() {
    const param = (req, name) => {
      const fromQuery = req.query?.[name];
      if (fromQuery !== undefined) return Array.isArray(fromQuery) ? fromQuery : [fromQuery];
      // POST with a Parameters body
      return (req.body?.parameter ?? [])
        .filter((p) => p.name === name)
        .map((p) => p.valueString ?? p.valueCode ?? p.valueId ?? p.valueInteger?.toString());
    };
    const status = async (req) => {
      const { id } = req.params;
      if (id) {
        await this.repo.readResource('Subscription', id); // 404 / 410
      }
      const ids = id ? [id] : param(req, 'id');
      let bundle = await this.engine.statusBundle(ids.length ? ids : undefined);
      const statuses = id ? [] : param(req, 'status');
      if (statuses.length) {
        bundle.entry = bundle.entry.filter((e) =>
          statuses.includes(e.resource.parameter.find((p) => p.name === 'status')?.valueCode)
        );
        bundle.total = bundle.entry.length;
      }
      return [allOk, bundle];
    };
    const events = async (req) => {
      const num = (name) => {
        const v = param(req, name)[0];
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v)) throw new OperationOutcomeError(badRequest(`${name} must be a number`));
        return Number(v);
      };
      const bundle = await this.engine.eventsBundle(req.params.id, {
        since: num('eventsSinceNumber'),
        until: num('eventsUntilNumber'),
        content: param(req, 'content')[0],
      });
      return [allOk, bundle];
    };
    for (const method of ['GET', 'POST']) {
      this.router.add(method, 'Subscription/:id/$status', status);
      this.router.add(method, 'Subscription/$status', status);
      this.router.add(method, 'Subscription/:id/$events', events);
    }
  }

  // ---- HTTP entry point --------------------------------------------------------

  async handle(req, res, url) {
    const rel = url.pathname.slice(FHIR_PATH.length).replace(/^\/+/, '');
    try {
      if (rel === '.well-known/smart-configuration' && req.method === 'GET') {
        // S2: JSON whatever the Accept header says.
        sendJson(res, 200, this.smartConfiguration());
        return;
      }

      const negotiated = negotiate(req);
      if (negotiated.error) {
        this.#sendOutcome(res, negotiated.status, badRequest(negotiated.error), negotiated);
        return;
      }

      if (rel === 'metadata' && req.method === 'GET') {
        this.#send(res, 200, this.capabilityStatement(), {}, negotiated);
        return;
      }

      const relWithQuery = rel + url.search;
      const route = this.router.find(req.method, relWithQuery);
      if (!route) {
        this.#sendOutcome(res, 404, badRequest(`No FHIR interaction for ${req.method} ${url.pathname}`), negotiated);
        return;
      }

      const raw = await readBody(req);
      const body = parseBody(req, raw, route);
      if (body?.error) {
        this.#sendOutcome(res, body.status ?? 400, badRequest(body.error), negotiated);
        return;
      }

      // The request log (GET /_admin/requests): which client made which FHIR
      // call, so tests can check every call has its AuditEvent (BALP A2).
      const logged = { method: req.method, path: rel, query: url.search.slice(1), client: null, status: null };
      this.requests.push(logged);
      res.on('finish', () => { logged.status = res.statusCode; });
      if (!this.noAuth) {
        const who = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
        if (who) logged.client = (await this.verifyToken(who[1]))?.clientId ?? null;
        const denied = await this.#authorize(req, route, body?.value, req.method);
        if (denied) {
          this.#sendOutcome(res, denied.status, denied.outcome, negotiated, denied.headers);
          return;
        }
      }

      const interaction = route.data?.interaction;
      const resourceType = route.params.resourceType;
      if (interaction === 'search-type') {
        const problem = unsupportedSearch(resourceType, route.query ?? body?.value ?? {});
        if (problem) {
          this.#sendOutcome(res, 400, badRequest(problem), negotiated);
          return;
        }
      }

      // PUT on an id that does not exist yet is an update-as-create: 201, not 200.
      let updateCreates = false;
      if (interaction === 'update' && route.params.id) {
        updateCreates = !(await this.repo.readResource(resourceType, route.params.id).then(() => true, () => false));
      }

      const [outcome, resource] = await this.router.handleRequest(
        {
          method: req.method,
          url: relWithQuery,
          pathname: '',
          body: body?.value,
          params: {},
          query: {},
          headers: req.headers,
        },
        this.repo
      );

      let status = getStatus(outcome);
      if (status >= 400) {
        this.#sendOutcome(res, status, outcome, negotiated);
        return;
      }
      if (updateCreates && status === 200) status = 201;

      const headers = {};
      if (resource?.meta?.versionId && resource.resourceType !== 'Bundle') {
        headers.ETag = `W/"${resource.meta.versionId}"`;
        if (resource.meta.lastUpdated) {
          headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
        }
        if (status === 201) {
          headers.Location = `${this.base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
        }
      }
      if (resource?.resourceType === 'Bundle') {
        if (interaction === 'search-type') this.#addSearchLinks(resource, resourceType, route.query ?? body?.value ?? {}, relWithQuery);
        if (interaction === 'history-instance') this.#addHistoryLinks(resource, url);
      }

      if (!resource) {
        this.#send(res, status, outcome, headers, negotiated); // e.g. delete: 200 + OperationOutcome
        return;
      }
      // Prefer: return=minimal | OperationOutcome (R4 http.html#ops)
      const prefer = /return=(minimal|representation|OperationOutcome)/i.exec(req.headers.prefer ?? '')?.[1];
      if (prefer === 'minimal' && req.method !== 'GET') {
        res.writeHead(status, headers);
        res.end();
        return;
      }
      if (prefer?.toLowerCase() === 'operationoutcome' && req.method !== 'GET') {
        this.#send(res, status, outcome, headers, negotiated);
        return;
      }
      this.#send(res, status, resource, headers, negotiated);
    } catch (err) {
      const outcome = err instanceof OperationOutcomeError ? err.outcome : normalizeOperationOutcome(err);
      const status = getStatus(outcome);
      if (status >= 500) log('FHIR request failed:', err.stack ?? err);
      this.#sendOutcome(res, status >= 400 ? status : 500, status >= 400 ? outcome : serverError(err), {});
    }
  }

  // ---- authorization (S16, SMART scopes S9) --------------------------------------

  async #authorize(req, route, body, method) {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const challenge = 'Bearer realm="herald-interop"';
    if (!m) {
      return { status: 401, outcome: unauthorized, headers: { 'WWW-Authenticate': challenge } };
    }
    const verdict = await this.verifyToken(m[1]);
    if (!verdict.ok) {
      return {
        status: 401,
        outcome: verdict.reason === 'expired' ? unauthorizedTokenExpired : unauthorized,
        headers: {
          'WWW-Authenticate': `${challenge}, error="invalid_token", error_description="${verdict.reason === 'expired' ? 'token expired' : 'unknown token'}"`,
        },
      };
    }

    const needs = this.#needs(route, body, method);
    const missing = needs.filter(([type, letter]) => !allows(verdict.grants, type, letter));
    if (missing.length > 0) {
      const what = missing.map(([type, letter]) => `${letter} on ${type}`).join(', ');
      return {
        status: 403,
        outcome: {
          ...forbidden,
          issue: [{ ...forbidden.issue[0], diagnostics: `token scope "${verdict.scope}" does not allow ${what}` }],
        },
        headers: { 'WWW-Authenticate': `Bearer realm="herald-interop", error="insufficient_scope"` },
      };
    }
    return undefined;
  }

  /** [resourceType, letter] pairs a request needs. Batch/transaction: one per entry. */
  #needs(route, body, method) {
    const interaction = route.data?.interaction;
    if (interaction === 'batch') {
      return (body?.entry ?? []).flatMap((entry) => {
        const m = entry.request?.method ?? 'GET';
        const r = this.router.find(m, entry.request?.url ?? '');
        return r ? this.#needs(r, entry.resource, m) : [['*', 'c'], ['*', 'r'], ['*', 'u'], ['*', 'd']];
      });
    }
    const type = route.params.resourceType ?? route.path.split('/')[0];
    if (interaction === 'operation') {
      // $status / $events read subscription state; $graphql reads anything.
      return [[type.startsWith('$') ? '*' : type, 'r']];
    }
    if (interaction === 'search-system') return [['*', 's']];
    return [[type, letterFor(interaction, method)]];
  }

  // ---- paging links (absolute, same origin) ---------------------------------------

  /**
   * MemoryRepository returns `total` but no links; the medplum server builds its links
   * with formatSearchQuery, and so do we, against this listener's absolute base:
   * http://127.0.0.1:P1/fhir/R4/Appointment?_count=1&_offset=1&...
   */
  #addSearchLinks(bundle, resourceType, query, relWithQuery) {
    const request = parseSearchRequest(resourceType, query);
    const count = Math.min(request.count ?? 20, 1000);
    const offset = request.offset ?? 0;
    const link = (o) => `${this.base}/${resourceType}${formatSearchQuery({ ...request, count, offset: o })}`;
    bundle.link = [{ relation: 'self', url: `${this.base}/${relWithQuery}` }];
    bundle.link.push({ relation: 'first', url: link(0) });
    if (count > 0 && offset + count < (bundle.total ?? 0)) {
      bundle.link.push({ relation: 'next', url: link(offset + count) });
    }
    if (offset > 0 && count > 0) {
      bundle.link.push({ relation: 'previous', url: link(Math.max(0, offset - count)) });
    }
  }

  #addHistoryLinks(bundle, url) {
    const params = new URLSearchParams(url.search);
    const count = Math.min(Number(params.get('_count') ?? 20), 1000);
    const offset = Number(params.get('_offset') ?? 0);
    const path = `${this.base}${url.pathname.slice(FHIR_PATH.length)}`;
    bundle.link = [{ relation: 'self', url: `${path}${url.search}` }];
    if (count > 0 && offset + count < bundle.total) {
      params.set('_offset', String(offset + count));
      params.set('_count', String(count));
      bundle.link.push({ relation: 'next', url: `${path}?${params}` });
    }
  }

  // ---- replies ----------------------------------------------------------------------

  #send(res, status, resource, headers, negotiated) {
    const contentType = `${FHIR_JSON}; charset=utf-8${negotiated.echoVersion ? '; fhirVersion=4.0' : ''}`;
    sendJson(res, status, resource, headers, contentType);
  }

  #sendOutcome(res, status, outcome, negotiated, headers = {}) {
    this.#send(res, status, outcome, headers, negotiated ?? {});
  }

  // ---- discovery ----------------------------------------------------------------------

  /** SMART App Launch 2.2 discovery document (S2-S5). */
  smartConfiguration() {
    return {
      issuer: this.issuer,
      jwks_uri: `${this.issuer}/jwks`,
      authorization_endpoint: `${this.issuer}/auth`,
      token_endpoint: `${this.issuer}/token`,
      introspection_endpoint: `${this.issuer}/token/introspection`,
      grant_types_supported: ['authorization_code', 'client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      code_challenge_methods_supported: ['S256'],
      response_types_supported: ['code'],
      scopes_supported: SCOPES_SUPPORTED,
      capabilities: SMART_CAPABILITIES,
    };
  }

  /** A CapabilityStatement for /metadata: R4 4.0.1, JSON, SMART security, backport topics. */
  capabilityStatement() {
    const types = Object.keys(globalSchema.types)
      .filter((t) => globalSchema.types[t].searchParams && /^[A-Z]/.test(t) && t !== 'Resource' && t !== 'DomainResource')
      .sort();
    const interaction = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'].map(
      (code) => ({ code })
    );
    return {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: new Date().toISOString(),
      kind: 'instance',
      software: { name: 'Herald interop harness (@medplum/fhir-router MemoryRepository)' },
      implementation: { description: 'Herald interop test server', url: this.base },
      fhirVersion: '4.0.1',
      format: ['json', FHIR_JSON],
      instantiates: ['http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4'],
      rest: [
        {
          mode: 'server',
          security: {
            extension: [
              {
                url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
                extension: [
                  { url: 'token', valueUri: `${this.issuer}/token` },
                  { url: 'authorize', valueUri: `${this.issuer}/auth` },
                ],
              },
            ],
            service: [
              {
                coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
              },
            ],
          },
          resource: types.map((type) => ({
            type,
            interaction,
            versioning: 'versioned',
            readHistory: true,
            updateCreate: true,
            conditionalCreate: true,
            conditionalUpdate: true,
            conditionalDelete: 'single',
            ...(type === 'Subscription'
              ? {
                  extension: Object.keys(TOPICS).map((topic) => ({
                    url: 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical',
                    valueCanonical: topic,
                  })),
                  operation: [
                    { name: 'status', definition: 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status' },
                    { name: 'events', definition: 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events' },
                  ],
                }
              : {}),
            searchParam: Object.entries(globalSchema.types[type].searchParams ?? {})
              .filter(([, sp]) => MATCHABLE.has(sp.type))
              .map(([name, sp]) => ({ name, type: sp.type })),
          })),
        },
      ],
    };
  }
}

// ---- content negotiation ----------------------------------------------------------

function parseMediaRanges(header) {
  return header
    .split(',')
    .map((part) => {
      const [type, ...params] = part.split(';').map((s) => s.trim());
      const p = {};
      for (const kv of params) {
        const i = kv.indexOf('=');
        if (i > 0) p[kv.slice(0, i).trim().toLowerCase()] = kv.slice(i + 1).trim().replace(/^"|"$/g, '');
      }
      return { type: type.toLowerCase(), params: p, q: p.q === undefined ? 1 : Number(p.q) };
    })
    .filter((r) => r.type);
}

/**
 * STRICT R4 negotiation: a media type that names a fhirVersion other than 4.0 is refused,
 * 406 for Accept, 415 for Content-Type. application/fhir+json and application/json are fine.
 */
function negotiate(req) {
  const result = { echoVersion: false };
  const accept = req.headers.accept;
  if (accept) {
    const ranges = parseMediaRanges(accept);
    const good = ranges.filter(
      (r) => JSON_TYPES.has(r.type) && r.q > 0 && (r.params.fhirversion === undefined || r.params.fhirversion === '4.0')
    );
    if (good.length === 0) {
      const versions = ranges.map((r) => r.params.fhirversion).filter(Boolean);
      return {
        status: 406,
        error: versions.length
          ? `This is a FHIR R4 server: fhirVersion=${versions.join(',')} cannot be served (only 4.0)`
          : `Not acceptable: this server produces ${FHIR_JSON} (FHIR R4, fhirVersion=4.0) only`,
      };
    }
    result.echoVersion = good.some((r) => r.params.fhirversion === '4.0');
  }
  const ct = req.headers['content-type'];
  if (ct) {
    const [range] = parseMediaRanges(ct);
    if (range?.params.fhirversion !== undefined && range.params.fhirversion !== '4.0') {
      return {
        status: 415,
        error: `This is a FHIR R4 server: request body with fhirVersion=${range.params.fhirversion} is not supported (only 4.0)`,
      };
    }
  }
  return result;
}

/** Parses the request body for the route; { value } or { error, status }. */
function parseBody(req, raw, route) {
  if (raw.length === 0) return undefined;
  const ct = parseMediaRanges(req.headers['content-type'] ?? '')[0]?.type;
  if (route.path.endsWith('_search')) {
    if (ct !== 'application/x-www-form-urlencoded') {
      return { status: 415, error: 'POST _search needs application/x-www-form-urlencoded' };
    }
    const value = {};
    for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) {
      value[k] = value[k] === undefined ? v : [].concat(value[k], v);
    }
    return { value };
  }
  const allowed = route.data?.interaction === 'patch' ? ['application/json-patch+json'] : [FHIR_JSON, 'application/json'];
  if (!allowed.includes(ct)) {
    return { status: 415, error: `Content-Type must be ${allowed.join(' or ')} (got ${ct ?? 'none'})` };
  }
  try {
    return { value: JSON.parse(raw.toString('utf8')) };
  } catch (err) {
    return { status: 400, error: `Body is not valid JSON: ${err.message}` };
  }
}

/**
 * The in-memory engine silently matches nothing for parameters it cannot evaluate, which
 * would make a test pass on an empty result. Refuse them instead, as the medplum server
 * refuses unknown parameters.
 */
function unsupportedSearch(resourceType, query) {
  const params = globalSchema.types[resourceType]?.searchParams ?? {};
  for (const key of Object.keys(query)) {
    const code = key.split(':')[0];
    if (SEARCH_CONTROL.has(code)) continue;
    if (code === '_has' || key.includes('.')) return `Chained and _has searches are not supported by this harness (${key})`;
    const sp = params[code];
    if (!sp) return `Unknown search parameter for ${resourceType}: ${code}`;
    if (!MATCHABLE.has(sp.type)) return `Search parameter ${code} (type ${sp.type}) is not supported by the in-memory engine`;
  }
  return undefined;
}
