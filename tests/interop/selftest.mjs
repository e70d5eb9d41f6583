// Self-test of the interop harness (npm test). Starts server.mjs as a child process and
// drives it over HTTP like Herald will: SMART Backend Services tokens (RS384 and ES384),
// FHIR interactions, R4 and topic-based subscriptions, and the admin routes.
// Everything runs on 127.0.0.1 with synthetic data.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { SignJWT, createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url));
const FHIR_JSON = 'application/fhir+json';
const BP = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
const APPOINTMENT_TOPIC = 'http://herald.test/SubscriptionTopic/appointment';

// ---- helpers -------------------------------------------------------------------------

/** Starts server.mjs; resolves with { child, urls, stderr(), stdout() } once the JSON line is printed. */
function startServer(extraArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER, ...extraArgs], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0 && !child.urls) {
        child.urls = JSON.parse(out.slice(0, nl));
        resolve({ child, urls: child.urls, stderr: () => err, stdout: () => out });
      }
    });
    child.on('exit', (code) => {
      if (!child.urls) reject(new Error(`server exited (${code}) before it was ready:\n${err}`));
    });
    setTimeout(() => reject(new Error(`server not ready after 30 s:\n${err}`)), 30_000).unref();
  });
}

/** A tiny local HTTP server; handler(req, body) -> [status, headers, body] or undefined (200). */
function startHttp(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(async (req, res) => {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const body = Buffer.concat(chunks).toString('utf8');
      const [status, headers, text] = (await handler(req, body)) ?? [200, {}, ''];
      res.writeHead(status, headers);
      res.end(text);
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const param = (params, name) => params.parameter.find((p) => p.name === name);

// ---- the test ------------------------------------------------------------------------

describe('Herald interop harness', () => {
  let srv; // { child, urls, stderr }
  let fhir; // FHIR base
  let issuer;
  let admin;
  let jwks; // JWKS server
  let receiver; // notification receiver
  const received = []; // { path, method, headers, body }
  let rsa;
  let ec;
  let token; // system/*.cruds token
  const CLIENT = 'herald-selftest';

  /** A SMART client assertion (S17): iss = sub = client_id, aud = token URL, exp <= 5 min, jti, kid, typ JWT. */
  async function assertion({ key = rsa, clientId = CLIENT, aud = `${issuer}/token`, exp, jti = randomUUID(), jku } = {}) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...(jku ? { jku } : {}) })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(aud)
      .setIssuedAt(now)
      .setExpirationTime(exp ?? now + 240)
      .setJti(jti)
      .sign(key.privateKey);
  }

  async function tokenRequest(clientAssertion, scope = 'system/*.cruds') {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion,
      }),
    });
    return { status: res.status, body: await res.json(), headers: res.headers };
  }

  /** FHIR call with the default token. */
  async function f(method, path, { body, headers = {}, auth = token } = {}) {
    const url = path.startsWith('http') ? path : `${fhir}/${path}`;
    const res = await fetch(url, {
      method,
      headers: {
        Accept: FHIR_JSON,
        ...(auth ? { Authorization: `Bearer ${auth}` } : {}),
        ...(body ? { 'Content-Type': FHIR_JSON } : {}),
        ...headers,
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  async function adminCall(method, path, body) {
    const res = await fetch(`${admin}/${path}`, {
      method,
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json() };
  }

  const idle = () => adminCall('GET', 'idle');

  before(async () => {
    srv = await startServer();
    ({ fhir, issuer, admin } = srv.urls);

    // Client keys: one RS384 and one ES384 (P-384) key, published as a JWKS (S18).
    const mk = async (alg, opts) => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...opts });
      const kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
      return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
    };
    rsa = await mk('RS384', { modulusLength: 2048 });
    ec = await mk('ES384');
    jwks = await startHttp((req) =>
      req.url === '/.well-known/jwks.json'
        ? [200, { 'Content-Type': 'application/json' }, JSON.stringify({ keys: [rsa.jwk, ec.jwk] })]
        : [404, {}, '']
    );
    receiver = await startHttp((req, body) => {
      received.push({ path: req.url, method: req.method, headers: req.headers, body });
      if (req.url.startsWith('/fail')) return [500, {}, 'receiver down'];
      return [200, {}, ''];
    });
  });

  after(async () => {
    srv?.child.kill('SIGTERM');
    jwks?.server.close();
    receiver?.server.close();
    if (process.exitCode) process.stderr.write(`--- server stderr ---\n${srv?.stderr()}\n`);
  });

  it('prints one JSON line with loopback URLs', () => {
    assert.match(fhir, /^http:\/\/127\.0\.0\.1:\d+\/fhir\/R4$/);
    assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(admin, `${new URL(fhir).origin}/_admin`);
  });

  it('serves SMART discovery and R4 metadata without a token', async () => {
    const res = await fetch(`${fhir}/.well-known/smart-configuration`, { headers: { Accept: 'text/html' } });
    assert.equal(res.status, 200);
    const conf = await res.json();
    assert.equal(conf.issuer, issuer);
    assert.equal(conf.token_endpoint, `${issuer}/token`);
    assert.deepEqual(conf.token_endpoint_auth_signing_alg_values_supported, ['RS384', 'ES384']);
    assert.deepEqual(conf.code_challenge_methods_supported, ['S256']);
    assert.ok(conf.capabilities.includes('client-confidential-asymmetric'));
    const meta = await f('GET', 'metadata', { auth: null });
    assert.equal(meta.status, 200);
    assert.equal(meta.body.fhirVersion, '4.0.1');
  });

  it('registers a Backend Services client through /_admin/clients', async () => {
    const res = await adminCall('POST', 'clients', {
      client_id: CLIENT,
      jwks_uri: `${jwks.url}/.well-known/jwks.json`,
      scope: 'system/*.cruds system/Appointment.rs system/Subscription.cruds',
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const limited = await adminCall('POST', 'clients', {
      client_id: 'limited',
      jwks_uri: `${jwks.url}/.well-known/jwks.json`,
      scope: 'system/Appointment.read',
      token_endpoint_auth_signing_alg: 'ES384',
    });
    assert.equal(limited.status, 201, JSON.stringify(limited.body));
  });

  it('issues tokens for RS384 and ES384 client assertions (S16, S17, S19)', async () => {
    const a = await tokenRequest(await assertion({ key: rsa }));
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.token_type, 'Bearer');
    assert.equal(a.body.expires_in, 300);
    assert.equal(a.body.scope, 'system/*.cruds');
    assert.equal(a.body.refresh_token, undefined);
    assert.equal(a.headers.get('cache-control'), 'no-store');
    const b = await tokenRequest(await assertion({ key: ec }), 'system/Appointment.rs system/Subscription.cruds');
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(b.body.scope, 'system/Appointment.rs system/Subscription.cruds');
    token = a.body.access_token;
  });

  it('rejects a replayed jti, an expired assertion, a wrong aud, an unknown client and a foreign scope', async () => {
    const jti = randomUUID();
    assert.equal((await tokenRequest(await assertion({ jti }))).status, 200);
    const replay = await tokenRequest(await assertion({ jti }));
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, 'invalid_client');
    assert.match(replay.body.error_description, /only be used once/);

    const expired = await tokenRequest(await assertion({ exp: Math.floor(Date.now() / 1000) - 60 }));
    assert.equal(expired.body.error, 'invalid_client');
    assert.match(expired.body.error_description, /expired/);

    const tooLong = await tokenRequest(await assertion({ exp: Math.floor(Date.now() / 1000) + 3600 }));
    assert.equal(tooLong.body.error, 'invalid_client');
    assert.match(tooLong.body.error_description, /300 seconds/);

    const wrongAud = await tokenRequest(await assertion({ aud: issuer }));
    assert.equal(wrongAud.body.error, 'invalid_client');
    assert.match(wrongAud.body.error_description, /token endpoint/);

    // jku (optional, S17) must be the registered JWKS URL
    assert.equal((await tokenRequest(await assertion({ jku: `${jwks.url}/.well-known/jwks.json` }))).status, 200);
    const badJku = await tokenRequest(await assertion({ jku: `${jwks.url}/other.json` }));
    assert.match(badJku.body.error_description, /jku/);

    const unknown = await tokenRequest(await assertion({ clientId: 'nobody' }));
    assert.equal(unknown.body.error, 'invalid_client');

    // system/*.cruds covers system/Patient.rs, but not a patient/ scope or a write on the v1-read client
    const covered = await tokenRequest(await assertion(), 'system/Patient.rs');
    assert.equal(covered.body.scope, 'system/Patient.rs');
    const scope = await tokenRequest(await assertion(), 'patient/Patient.rs');
    assert.equal(scope.status, 400);
    assert.equal(scope.body.error, 'invalid_scope');
    const write = await tokenRequest(await assertion({ clientId: 'limited', key: ec }), 'system/Appointment.cruds');
    assert.equal(write.body.error, 'invalid_scope');

    // the ES384-only client refuses an RS384 assertion
    const alg = await tokenRequest(await assertion({ clientId: 'limited', key: rsa }), 'system/Appointment.read');
    assert.equal(alg.body.error, 'invalid_client');
  });

  it('answers 401 without a valid token and 403 when the scopes do not cover the call', async () => {
    const none = await f('GET', 'Patient', { auth: null });
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate'), /^Bearer/);
    assert.equal(none.body.resourceType, 'OperationOutcome');
    assert.equal((await f('GET', 'Patient', { auth: 'not-a-token' })).status, 401);

    // an expired access token: 401 that says so (S19: re-authenticate on expiry)
    const short = await adminCall('POST', 'clients', {
      client_id: 'short-lived',
      jwks_uri: `${jwks.url}/.well-known/jwks.json`,
      scope: 'system/*.rs',
      access_token_ttl: 1,
    });
    assert.equal(short.status, 201);
    const st = await tokenRequest(await assertion({ clientId: 'short-lived' }), 'system/Patient.rs');
    assert.equal(st.body.expires_in, 1);
    assert.equal((await f('GET', 'Patient', { auth: st.body.access_token })).status, 200);
    await sleep(2100);
    const expired = await f('GET', 'Patient', { auth: st.body.access_token });
    assert.equal(expired.status, 401);
    assert.match(expired.headers.get('www-authenticate'), /invalid_token/);
    assert.match(JSON.stringify(expired.body), /expired/i);

    const limited = await tokenRequest(await assertion({ clientId: 'limited', key: ec }), 'system/Appointment.read');
    assert.equal(limited.status, 200, JSON.stringify(limited.body));
    const t = limited.body.access_token;
    assert.equal((await f('GET', 'Appointment', { auth: t })).status, 200);
    assert.equal((await f('GET', 'Patient', { auth: t })).status, 403);
    const write = await f('POST', 'Appointment', { auth: t, body: { resourceType: 'Appointment', status: 'proposed', participant: [{ actor: { display: 'Synthetic Clinic' }, status: 'needs-action' }] } });
    assert.equal(write.status, 403);
  });

  it('is strict about fhirVersion: 406 for Accept, 415 for Content-Type', async () => {
    const a = await f('GET', 'Patient', { headers: { Accept: 'application/fhir+json; fhirVersion=4.3' } });
    assert.equal(a.status, 406);
    assert.equal(a.body.resourceType, 'OperationOutcome');
    const ok = await f('GET', 'Patient', { headers: { Accept: 'application/fhir+json; fhirVersion=4.0' } });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type'), /fhirVersion=4\.0/);
    const c = await f('POST', 'Patient', {
      body: { resourceType: 'Patient' },
      headers: { 'Content-Type': 'application/fhir+json; fhirVersion=4.3' },
    });
    assert.equal(c.status, 415);
    assert.equal((await f('GET', 'Patient', { headers: { Accept: 'application/json' } })).status, 200);
  });

  let patient;
  it('creates, reads, validates, versions and deletes', async () => {
    const p = await f('POST', 'Patient', { body: { resourceType: 'Patient', name: [{ family: 'Testperson', given: ['Ada'] }] } });
    assert.equal(p.status, 201);
    assert.match(p.headers.get('location'), new RegExp(`^${fhir}/Patient/${p.body.id}/_history/`));
    assert.equal(p.headers.get('etag'), `W/"${p.body.meta.versionId}"`);
    assert.ok(p.headers.get('last-modified'));
    patient = p.body;

    const bad = await f('POST', 'Patient', { body: { resourceType: 'Patient', foo: 1 } });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /foo/);

    // If-Match (412 on a stale version)
    const v1 = patient.meta.versionId;
    const u = await f('PUT', `Patient/${patient.id}`, { body: { ...patient, active: true }, headers: { 'If-Match': `W/"${v1}"` } });
    assert.equal(u.status, 200);
    assert.notEqual(u.body.meta.versionId, v1);
    const stale = await f('PUT', `Patient/${patient.id}`, { body: { ...patient, active: false }, headers: { 'If-Match': `W/"${v1}"` } });
    assert.equal(stale.status, 412);

    // _history newest first, and stable across calls; vread
    for (let i = 0; i < 2; i++) {
      const h = await f('GET', `Patient/${patient.id}/_history`);
      assert.equal(h.body.type, 'history');
      assert.deepEqual(h.body.entry.map((e) => e.resource.meta.versionId), [u.body.meta.versionId, v1]);
    }
    assert.equal((await f('GET', `Patient/${patient.id}/_history/${v1}`)).body.meta.versionId, v1);

    // delete -> 410 Gone
    const tmp = await f('POST', 'Patient', { body: { resourceType: 'Patient' } });
    assert.equal((await f('DELETE', `Patient/${tmp.body.id}`)).status, 200);
    assert.equal((await f('GET', `Patient/${tmp.body.id}`)).status, 410);
  });

  it('conditional create with If-None-Exist', async () => {
    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:herald:test', value: 'mrn-1' }] };
    const headers = { 'If-None-Exist': 'identifier=urn:herald:test|mrn-1' };
    const first = await f('POST', 'Patient', { body, headers });
    assert.equal(first.status, 201);
    const second = await f('POST', 'Patient', { body, headers });
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
  });

  it('searches with _count=1 and follows absolute next links to the end', async () => {
    for (let i = 1; i <= 3; i++) {
      const a = await f('POST', 'Appointment', {
        body: {
          resourceType: 'Appointment',
          status: 'booked',
          start: `2031-01-0${i}T09:00:00Z`,
          end: `2031-01-0${i}T09:30:00Z`,
          participant: [{ actor: { reference: `Patient/${patient.id}` }, status: 'accepted' }],
        },
      });
      assert.equal(a.status, 201, JSON.stringify(a.body));
    }
    let page = await f('GET', 'Appointment?status=booked&_count=1&_sort=date');
    assert.equal(page.body.total, 3);
    const seen = [];
    for (;;) {
      seen.push(...page.body.entry.map((e) => e.resource.start));
      const next = page.body.link.find((l) => l.relation === 'next');
      if (!next) break;
      assert.ok(next.url.startsWith(`${fhir}/Appointment?`), next.url);
      page = await f('GET', next.url);
      assert.equal(page.status, 200);
    }
    assert.deepEqual(seen, ['2031-01-01T09:00:00Z', '2031-01-02T09:00:00Z', '2031-01-03T09:00:00Z']);

    const since = await f('GET', `Appointment?_lastUpdated=gt2000-01-01&_sort=-_lastUpdated`);
    assert.equal(since.body.total, 3);
    const unknown = await f('GET', 'Appointment?nonsense=1');
    assert.equal(unknown.status, 400);
  });

  let r4sub;
  it('R4 criteria subscription: POST with channel headers, payload and X-Signature (N1, N2, N4)', async () => {
    const secret = 'synthetic-secret-1';
    const s = await f('POST', 'Subscription', {
      body: {
        resourceType: 'Subscription',
        status: 'requested',
        reason: 'selftest',
        criteria: 'Appointment?status=booked',
        channel: {
          type: 'rest-hook',
          endpoint: `${receiver.url}/r4`,
          payload: FHIR_JSON,
          header: ['Authorization: Bearer receiver-token-1', 'X-Herald-Test: yes'],
        },
        extension: [{ url: 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret', valueString: secret }],
      },
    });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    assert.equal(s.body.status, 'active');
    r4sub = s.body;

    received.length = 0;
    await f('POST', 'Appointment', { body: { resourceType: 'Appointment', status: 'proposed', participant: [{ actor: { display: 'Synthetic Clinic' }, status: 'needs-action' }] } });
    const booked = await f('POST', 'Appointment', {
      body: {
        resourceType: 'Appointment',
        status: 'booked',
        start: '2031-02-01T09:00:00Z',
        end: '2031-02-01T09:30:00Z',
        participant: [{ actor: { display: 'Synthetic Clinic' }, status: 'accepted' }],
      },
    });
    await idle();
    const hits = received.filter((r) => r.path === '/r4');
    assert.equal(hits.length, 1, 'only the booked appointment matches');
    const [hit] = hits;
    assert.equal(hit.method, 'POST');
    assert.equal(hit.headers.authorization, 'Bearer receiver-token-1');
    assert.equal(hit.headers['x-herald-test'], 'yes');
    assert.equal(hit.headers['content-type'], FHIR_JSON);
    assert.equal(JSON.parse(hit.body).id, booked.body.id);
    assert.equal(hit.headers['x-signature'], createHmac('sha256', secret).update(hit.body).digest('hex'));

    // N3: no notification on delete
    received.length = 0;
    await f('DELETE', `Appointment/${booked.body.id}`);
    await idle();
    assert.equal(received.filter((r) => r.path === '/r4').length, 0);
    await f('DELETE', `Subscription/${r4sub.id}`);
  });

  let bpsub;
  let eventSeq;
  it('backport subscription: handshake, then event-notification 1; $events returns it (N5-N10)', async () => {
    received.length = 0;
    const s = await f('POST', 'Subscription', {
      body: {
        resourceType: 'Subscription',
        meta: { profile: [`${BP}backport-subscription`] },
        status: 'requested',
        reason: 'selftest backport',
        criteria: APPOINTMENT_TOPIC,
        extension: [{ url: `${BP}backport-filter-criteria`, valueString: 'Appointment?status=booked,cancelled' }],
        channel: {
          type: 'rest-hook',
          endpoint: `${receiver.url}/bp`,
          payload: FHIR_JSON,
          _payload: { extension: [{ url: `${BP}backport-payload-content`, valueCode: 'id-only' }] },
          header: ['Authorization: Bearer receiver-token-2'],
          extension: [{ url: `${BP}backport-heartbeat-period`, valueUnsignedInt: 3600 }],
        },
      },
    });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    bpsub = s.body;
    await idle();

    const [handshake] = received.filter((r) => r.path === '/bp');
    assert.ok(handshake, 'handshake received');
    assert.equal(handshake.headers.authorization, 'Bearer receiver-token-2');
    const hb = JSON.parse(handshake.body);
    assert.equal(hb.type, 'history');
    const hs = hb.entry[0].resource;
    assert.equal(hs.resourceType, 'Parameters');
    assert.equal(param(hs, 'type').valueCode, 'handshake');
    assert.equal(param(hs, 'status').valueCode, 'requested');
    assert.equal(param(hs, 'events-since-subscription-start').valueString, '0');
    assert.equal(hb.entry[0].request.method, 'GET');
    assert.equal((await f('GET', `Subscription/${bpsub.id}`)).body.status, 'active');

    received.length = 0;
    const appt = await f('POST', 'Appointment', {
      body: { resourceType: 'Appointment', status: 'booked', start: '2031-03-01T09:00:00Z', end: '2031-03-01T09:30:00Z', participant: [{ actor: { display: 'Synthetic Clinic' }, status: 'accepted' }] },
    });
    await idle();
    const [event] = received.filter((r) => r.path === '/bp');
    const eb = JSON.parse(event.body);
    const es = eb.entry[0].resource;
    assert.equal(param(es, 'type').valueCode, 'event-notification');
    assert.equal(param(es, 'status').valueCode, 'active');
    assert.equal(param(es, 'topic').valueCanonical, APPOINTMENT_TOPIC);
    assert.equal(param(es, 'events-since-subscription-start').valueString, '1');
    const ne = param(es, 'notification-event');
    assert.equal(ne.part.find((p) => p.name === 'event-number').valueString, '1');
    assert.equal(ne.part.find((p) => p.name === 'focus').valueReference.reference, `${fhir}/Appointment/${appt.body.id}`);
    assert.equal(eb.entry[1].fullUrl, `${fhir}/Appointment/${appt.body.id}`);
    assert.equal(eb.entry[1].request.method, 'POST');
    assert.equal(eb.entry[1].resource, undefined, 'id-only carries no resource');
    bpsub.appointment = appt.body;

    const ev = await f('GET', `Subscription/${bpsub.id}/$events?eventsSinceNumber=1&eventsUntilNumber=1`);
    assert.equal(ev.status, 200);
    assert.equal(ev.body.type, 'history');
    const evs = ev.body.entry[0].resource;
    assert.equal(param(evs, 'type').valueCode, 'query-event');
    assert.equal(param(evs, 'notification-event').part[0].valueString, '1');
    const full = await f('POST', `Subscription/${bpsub.id}/$events`, {
      body: { resourceType: 'Parameters', parameter: [{ name: 'content', valueCode: 'full-resource' }] },
    });
    assert.equal(full.body.entry[1].resource.id, appt.body.id);

    const deliveries = (await adminCall('GET', 'deliveries')).body;
    eventSeq = deliveries.find((d) => d.subscription === `Subscription/${bpsub.id}` && d.eventNumber === 1).seq;
    assert.ok(eventSeq);
  });

  it('pause drops event 2 but $status counts it; redeliver replays event 1; heartbeat-now', async () => {
    assert.equal((await adminCall('POST', 'pause')).body.paused, true);
    received.length = 0;
    const appt = bpsub.appointment;
    await f('PUT', `Appointment/${appt.id}`, { body: { ...appt, status: 'cancelled' } });
    await idle();
    assert.equal(received.length, 0, 'nothing delivered while paused');
    const log = (await adminCall('GET', 'deliveries')).body;
    const dropped = log.find((d) => d.eventNumber === 2);
    assert.equal(dropped.status, 'paused');
    const st = await f('GET', `Subscription/${bpsub.id}/$status`);
    assert.equal(st.body.type, 'searchset');
    const sp = st.body.entry[0].resource;
    assert.equal(param(sp, 'type').valueCode, 'query-status');
    assert.equal(param(sp, 'events-since-subscription-start').valueString, '2');
    await adminCall('POST', 'resume');

    const original = log.find((d) => d.seq === eventSeq);
    const re = await adminCall('POST', 'redeliver', { seq: eventSeq });
    assert.equal(re.status, 200);
    assert.equal(re.body.status, 200);
    assert.equal(received.length, 1);
    assert.equal(received[0].body, original.body);

    received.length = 0;
    assert.equal((await adminCall('POST', 'heartbeat-now')).body.sent, 1);
    await idle();
    const beat = JSON.parse(received[0].body).entry[0].resource;
    assert.equal(param(beat, 'type').valueCode, 'heartbeat');
    assert.equal(param(beat, 'events-since-subscription-start').valueString, '2');
  });

  it('backport full-resource: delete events, and heartbeats every period when idle', async () => {
    received.length = 0;
    const s = await f('POST', 'Subscription', {
      body: {
        resourceType: 'Subscription',
        meta: { profile: [`${BP}backport-subscription`] },
        status: 'requested',
        reason: 'selftest full-resource',
        criteria: APPOINTMENT_TOPIC,
        channel: {
          type: 'rest-hook',
          endpoint: `${receiver.url}/full`,
          payload: FHIR_JSON,
          _payload: { extension: [{ url: `${BP}backport-payload-content`, valueCode: 'full-resource' }] },
          extension: [{ url: `${BP}backport-heartbeat-period`, valueUnsignedInt: 1 }],
        },
      },
    });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    const appt = await f('POST', 'Appointment', {
      body: { resourceType: 'Appointment', status: 'proposed', participant: [{ actor: { display: 'Synthetic Clinic' }, status: 'needs-action' }] },
    });
    await f('DELETE', `Appointment/${appt.body.id}`);
    await idle();
    const bodies = received.filter((r) => r.path === '/full').map((r) => JSON.parse(r.body));
    const types = bodies.map((b) => param(b.entry[0].resource, 'type').valueCode);
    assert.deepEqual(types.slice(0, 3), ['handshake', 'event-notification', 'event-notification']);
    assert.equal(bodies[1].entry[1].resource.id, appt.body.id, 'full-resource carries the resource');
    assert.equal(bodies[2].entry[1].request.method, 'DELETE');
    assert.equal(bodies[2].entry[1].resource, undefined, 'a delete has no resource to send');
    await waitFor('a periodic heartbeat', () =>
      received.some((r) => r.path === '/full' && param(JSON.parse(r.body).entry[0].resource, 'type').valueCode === 'heartbeat')
    );
    await f('DELETE', `Subscription/${s.body.id}`);
  });

  it('retries a failing receiver twice, then gives up and logs every attempt', async () => {
    const s = await f('POST', 'Subscription', {
      body: {
        resourceType: 'Subscription',
        status: 'requested',
        reason: 'failing receiver',
        criteria: 'Patient',
        channel: { type: 'rest-hook', endpoint: `${receiver.url}/fail` },
      },
    });
    assert.equal(s.status, 201);
    await f('POST', 'Patient', { body: { resourceType: 'Patient' } });
    await idle();
    const attempts = (await adminCall('GET', 'deliveries')).body.filter((d) => d.subscription === `Subscription/${s.body.id}`);
    assert.deepEqual(attempts.map((d) => d.status), [500, 500, 500]);
    assert.ok(attempts.every((d) => d.ok === false));
    assert.equal(attempts[0].body, '', 'no payload -> empty POST');
    assert.ok((await adminCall('GET', 'stats')).body.failures >= 3);

    // N8/N11: a failed handshake leaves a topic subscription in `error`; the client
    // re-activates it by setting it back to requested, which sends a new handshake.
    const bp = await f('POST', 'Subscription', {
      body: {
        resourceType: 'Subscription',
        meta: { profile: [`${BP}backport-subscription`] },
        status: 'requested',
        reason: 'handshake fails',
        criteria: APPOINTMENT_TOPIC,
        channel: { type: 'rest-hook', endpoint: `${receiver.url}/fail`, payload: FHIR_JSON },
      },
    });
    await idle();
    const errored = await f('GET', `Subscription/${bp.body.id}`);
    assert.equal(errored.body.status, 'error');
    const est = (await f('GET', `Subscription/${bp.body.id}/$status`)).body.entry[0].resource;
    assert.equal(param(est, 'status').valueCode, 'error');
    assert.equal(param(est, 'error').valueCodeableConcept.coding[0].code, 'no-response');
    const again = await f('PUT', `Subscription/${bp.body.id}`, {
      body: { ...errored.body, status: 'requested', channel: { ...errored.body.channel, endpoint: `${receiver.url}/bp2` } },
    });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    await idle();
    assert.equal((await f('GET', `Subscription/${bp.body.id}`)).body.status, 'active');
    assert.ok(received.some((r) => r.path === '/bp2'));
    await f('DELETE', `Subscription/${bp.body.id}`);

    const refused = await f('POST', 'Subscription', {
      body: { resourceType: 'Subscription', status: 'requested', reason: 'x', criteria: 'Patient', channel: { type: 'rest-hook', endpoint: 'http://192.0.2.1/hook' } },
    });
    assert.equal(refused.status, 400, 'non-loopback endpoints are refused');
  });

  it('reset empties the store and the delivery log but keeps clients', async () => {
    assert.equal((await adminCall('POST', 'reset')).status, 200);
    assert.deepEqual((await adminCall('GET', 'deliveries')).body, []);
    const s = await f('GET', 'Appointment');
    assert.equal(s.body.total, 0);
    assert.equal((await tokenRequest(await assertion())).status, 200);
  });

  // ---- phase 2: SMART EHR launch ---------------------------------------------------

  /** Follows redirects by hand with a cookie jar, like a headless browser, until redirectUri. */
  async function browse(startUrl, redirectUri) {
    const jar = new Map();
    let url = startUrl;
    for (let hop = 0; hop < 10; hop++) {
      const res = await fetch(url, {
        redirect: 'manual',
        headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
      });
      for (const c of res.headers.getSetCookie()) {
        const [kv] = c.split(';');
        const i = kv.indexOf('=');
        jar.set(kv.slice(0, i), kv.slice(i + 1));
      }
      const location = res.headers.get('location');
      if (!location) return { status: res.status, body: await res.text() };
      const next = new URL(location, url);
      if (next.href.startsWith(redirectUri)) return { redirect: next };
      url = next.href;
    }
    throw new Error('too many redirects');
  }

  function pkce() {
    const verifier = randomUUID() + randomUUID();
    return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
  }

  it('EHR launch: authorization_code + PKCE S256, launch context, id_token with fhirUser, refresh', async () => {
    const redirectUri = `${receiver.url}/callback`;
    const reg = await adminCall('POST', 'clients', {
      client_id: 'ehr-app',
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      scope: 'launch openid fhirUser offline_access patient/*.rs',
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const launch = await adminCall('POST', 'launch', { patient: 'p1', encounter: 'e1' });
    assert.equal(launch.status, 201);
    const { verifier, challenge } = pkce();
    const authorize = (extra) =>
      `${issuer}/auth?${new URLSearchParams({
        response_type: 'code',
        client_id: 'ehr-app',
        redirect_uri: redirectUri,
        scope: 'launch openid fhirUser offline_access patient/*.rs',
        state: randomUUID(),
        aud: fhir,
        launch: launch.body.launch,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...extra,
      })}`;

    const { redirect } = await browse(authorize(), redirectUri);
    assert.ok(redirect, 'redirected back with a code');
    const code = redirect.searchParams.get('code');
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: 'ehr-app', code_verifier: verifier }),
    });
    const tok = await res.json();
    assert.equal(res.status, 200, JSON.stringify(tok));
    assert.equal(tok.patient, 'p1');
    assert.equal(tok.encounter, 'e1');
    assert.equal(tok.need_patient_banner, true);
    assert.ok(tok.smart_style_url);
    assert.ok(tok.refresh_token);
    assert.deepEqual(tok.scope.split(' ').sort(), ['fhirUser', 'launch', 'offline_access', 'openid', 'patient/*.rs']);
    const keys = createRemoteJWKSet(new URL(`${issuer}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(tok.id_token, keys, { issuer, audience: 'ehr-app' });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(payload.fhirUser, 'Practitioner/pr1');
    assert.equal((await f('GET', 'Patient', { auth: tok.access_token })).status, 200);
    assert.equal((await f('POST', 'Patient', { auth: tok.access_token, body: { resourceType: 'Patient' } })).status, 403);

    const refreshed = await fetch(`${issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tok.refresh_token, client_id: 'ehr-app' }),
    });
    const rt = await refreshed.json();
    assert.equal(refreshed.status, 200, JSON.stringify(rt));
    assert.equal(rt.patient, 'p1');
    assert.ok(rt.access_token);

    // plain PKCE, an unknown launch and a wrong aud are all refused
    const plain = await browse(authorize({ code_challenge: verifier, code_challenge_method: 'plain' }), redirectUri);
    assert.match(plain.redirect?.searchParams.get('error') ?? plain.body, /invalid_request/);
    const badLaunch = await browse(authorize({ launch: 'nope' }), redirectUri);
    assert.equal(badLaunch.redirect?.searchParams.get('error'), 'invalid_request');
    const badAud = await browse(authorize({ aud: 'http://127.0.0.1:1/fhir' }), redirectUri);
    assert.equal(badAud.redirect?.searchParams.get('error'), 'invalid_request');
  });

  it('--no-auth serves FHIR without a token; stdin closing or SIGTERM stops the server cleanly', async () => {
    const other = await startServer(['--no-auth']);
    const res = await fetch(`${other.urls.fhir}/Patient`);
    assert.equal(res.status, 200);
    const exited = new Promise((resolve) => other.child.on('exit', resolve));
    other.child.stdin.end();
    assert.equal(await exited, 0);
    assert.equal(other.stdout(), `${JSON.stringify(other.urls)}\n`, 'stdout carries exactly the one JSON line');

    const third = await startServer(['--no-auth']);
    const stopped = new Promise((resolve) => third.child.on('exit', (code, signal) => resolve({ code, signal })));
    third.child.kill('SIGTERM');
    assert.deepEqual(await stopped, { code: 0, signal: null }, 'SIGTERM exits cleanly');
  });
});
