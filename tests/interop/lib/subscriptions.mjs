// Subscription delivery on top of the FHIR store. No npm package does this for an
// in-memory medplum repository, so this is the harness's own code. It handles:
//
//  * R4 criteria subscriptions (N1-N4): `criteria` is a search string, matched with
//    @medplum/core's resourceMatchesSubscriptionCriteria (parseSearchRequest +
//    matchesSearchRequest, plus medplum's own fhir-path-criteria-expression and
//    subscription-supported-interaction extensions). Created `requested` -> stored
//    `active` (N1). No notification on delete (N3). Each channel.header is sent as an
//    HTTP header (N4). No channel.payload -> empty POST; with a payload -> POST of the
//    full resource to channel.endpoint (Medplum's behaviour; note N2 describes HAPI,
//    which PUTs to {endpoint}/{type}/{id} instead). Medplum's subscription-secret
//    extension adds X-Signature = hex HMAC-SHA256 of the body.
//
//  * Topic-based subscriptions, Subscriptions R5 Backport IG STU 1.1, R4 flavour
//    (N5-N11): two topics defined by the harness, payload content empty | id-only |
//    full-resource, handshake (N8), heartbeats, event numbers, $status and $events.
//
// Deliveries never delay the FHIR response: changes are processed on one ordered
// chain after the write, and each subscription has its own ordered delivery queue.

import { createHmac, randomUUID } from 'node:crypto';
import {
  OperationOutcomeError,
  badRequest,
  globalSchema,
  matchesSearchRequest,
  parseSearchRequest,
  resourceMatchesSubscriptionCriteria,
} from '@medplum/core';
import { log, loopbackUrlError, sleep } from './util.mjs';

const BP = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
export const BACKPORT_SUBSCRIPTION_PROFILE = `${BP}backport-subscription`;
const STATUS_PROFILE = `${BP}backport-subscription-status-r4`;
const NOTIFICATION_PROFILE = `${BP}backport-subscription-notification-r4`;
const EXT_FILTER = `${BP}backport-filter-criteria`;
const EXT_CONTENT = `${BP}backport-payload-content`;
const EXT_HEARTBEAT = `${BP}backport-heartbeat-period`;
const EXT_TIMEOUT = `${BP}backport-timeout`;
const MEDPLUM_SECRET = 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret';

/** The topics this harness defines (R4 has no SubscriptionTopic resource: topics are canonicals). */
export const TOPICS = {
  'http://herald.test/SubscriptionTopic/appointment': {
    resourceType: 'Appointment',
    interactions: ['create', 'update', 'delete'],
  },
  'http://herald.test/SubscriptionTopic/medication-request': {
    resourceType: 'MedicationRequest',
    interactions: ['create', 'update', 'delete'],
  },
};

const CONTENT_CODES = new Set(['empty', 'id-only', 'full-resource']);
const DEFAULT_TIMEOUT_MS = 5000; // per delivery attempt
const RETRY_DELAYS_MS = [200, 500]; // two retries after the first attempt

export function isBackport(sub) {
  return Boolean(sub.meta?.profile?.includes(BACKPORT_SUBSCRIPTION_PROFILE));
}

function extensions(element, url) {
  return (element?.extension ?? []).filter((e) => e.url === url);
}

/** Payload content of a backport subscription (N5): channel._payload.extension, default id-only. */
function payloadContent(sub) {
  return extensions(sub.channel?._payload, EXT_CONTENT)[0]?.valueCode ?? 'id-only';
}

function heartbeatSeconds(sub) {
  const v = extensions(sub.channel, EXT_HEARTBEAT)[0]?.valueUnsignedInt;
  return typeof v === 'number' && v > 0 ? v : undefined;
}

function timeoutMs(sub) {
  const v = extensions(sub.channel, EXT_TIMEOUT)[0]?.valueUnsignedInt;
  return typeof v === 'number' && v > 0 ? v * 1000 : DEFAULT_TIMEOUT_MS;
}

/** Filter criteria strings (N5), normalised to `Type?query`. */
function filterCriteria(sub) {
  const type = TOPICS[sub.criteria]?.resourceType;
  return extensions(sub, EXT_FILTER)
    .map((e) => e.valueString)
    .filter(Boolean)
    .map((f) => (f.includes('?') ? f : `${type}?${f}`));
}

/** channel.header entries "Name: value" -> { Name: value } (N4). */
function channelHeaders(sub) {
  const headers = {};
  for (const line of sub.channel?.header ?? []) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return headers;
}

function secretOf(sub) {
  return extensions(sub, MEDPLUM_SECRET)[0]?.valueString;
}

export class SubscriptionEngine {
  /** @param {{ repo: import('./repo.mjs').HarnessRepository }} options */
  constructor({ repo }) {
    this.repo = repo;
    this.baseUrl = ''; // absolute FHIR base, set when listening
    this.paused = false;
    this.deliveries = []; // every attempt, see #logAttempt
    this.seq = 0; // monotonic across resets so an old seq never names a new delivery
    this.states = new Map(); // subscription id -> per-subscription state
    this.chain = Promise.resolve(); // orders change processing
    this.generation = 0; // bumped by reset(); work from an older generation is dropped

    repo.addBeforeWrite((resource, _interaction, previous) => {
      if (resource.resourceType === 'Subscription') {
        this.#checkSubscription(resource, previous);
      }
    });
    repo.onChange((event) => {
      const generation = this.generation;
      this.chain = this.chain
        .then(() => (generation === this.generation ? this.#process(event) : undefined))
        .catch((err) => log('subscription processing failed:', err.stack ?? err));
    });
  }

  // ---- validation and status on write (runs inside the FHIR request) -------------

  #checkSubscription(sub, previous) {
    const fail = (msg) => {
      throw new OperationOutcomeError(badRequest(msg));
    };
    if (sub.channel?.type !== 'rest-hook') {
      fail('This harness delivers rest-hook subscriptions only (channel.type = rest-hook)');
    }
    if (!sub.channel.endpoint) {
      fail('channel.endpoint is required for rest-hook');
    }
    const urlError = loopbackUrlError(sub.channel.endpoint, 'channel.endpoint');
    if (urlError) fail(urlError);
    for (const line of sub.channel.header ?? []) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:/.test(line)) {
        fail(`channel.header must look like "Name: value": ${line}`);
      }
    }

    if (isBackport(sub)) {
      const topic = TOPICS[sub.criteria];
      if (!topic) {
        fail(`Unknown topic ${sub.criteria}; this server offers ${Object.keys(TOPICS).join(', ')}`);
      }
      const content = payloadContent(sub);
      if (!CONTENT_CODES.has(content)) {
        fail(`backport-payload-content must be empty | id-only | full-resource, not ${content}`);
      }
      for (const f of filterCriteria(sub)) {
        if (parseSearchRequest(f).resourceType !== topic.resourceType) {
          fail(`backport-filter-criteria ${f} does not apply to ${topic.resourceType}`);
        }
      }
      // N8: the server holds a new (or re-activated) topic subscription as `requested`
      // until the handshake succeeds.
      const wasActive = previous?.status === 'active';
      if (sub.status === 'requested' || (sub.status === 'active' && !wasActive)) {
        sub.status = 'requested';
      }
    } else {
      const criteria = sub.criteria ?? '';
      const type = criteria.split('?')[0];
      if (!globalSchema.types[type]) {
        fail(`criteria must be a search string like "Appointment?status=booked", got "${criteria}"`);
      }
      // N1: requested -> active. (medplum's in-memory repository would leave it requested.)
      if (sub.status === 'requested') {
        sub.status = 'active';
      }
    }
  }

  // ---- change processing (after the FHIR response) --------------------------------

  async #process({ interaction, resource, previous }) {
    if (resource.resourceType === 'Subscription') {
      this.#subscriptionChanged(interaction, resource);
    }

    const subs = await this.repo.all('Subscription');
    for (const sub of subs) {
      if (sub.channel?.type !== 'rest-hook') continue;
      if (isBackport(sub)) {
        await this.#topicEvent(sub, interaction, resource, previous);
      } else if (interaction !== 'delete' && (sub.status === 'requested' || sub.status === 'active')) {
        // N3: R4 criteria subscriptions are not notified of deletes.
        const matches = await resourceMatchesSubscriptionCriteria({
          resource,
          subscription: sub,
          context: { interaction },
          getPreviousResource: async () => previous,
        });
        if (matches) {
          this.#enqueue(sub, () => this.#r4Notification(sub, resource));
        }
      }
    }
  }

  #subscriptionChanged(interaction, sub) {
    if (interaction === 'delete') {
      this.#dropState(sub.id);
      return;
    }
    if (!isBackport(sub)) {
      return;
    }
    const state = this.#state(sub);
    state.sub = sub;
    // A client write decides the status from now on (until the next handshake result).
    state.status = sub.status;
    if (sub.status !== 'error') state.error = undefined;
    if (sub.status === 'requested') {
      // N8: handshake on create / re-activation; it does not increment the counter (N7).
      this.#enqueue(sub, () => this.#notification(state, 'handshake', []), {
        type: 'handshake',
        onResult: (ok) => this.#setStatus(sub.id, ok ? 'active' : 'error', ok ? undefined : 'no-response'),
      });
    }
    this.#armHeartbeat(state);
  }

  async #topicEvent(sub, interaction, resource, previous) {
    const topic = TOPICS[sub.criteria];
    if (!topic || resource.resourceType !== topic.resourceType) return;
    if (!topic.interactions.includes(interaction)) return;
    if (sub.status === 'off') return;
    // Filters are evaluated against the new version; for a delete, against the last one.
    const subject = interaction === 'delete' ? previous : resource;
    for (const f of filterCriteria(sub)) {
      if (!matchesSearchRequest(subject, parseSearchRequest(f))) return;
    }

    const state = this.#state(sub);
    state.sub = sub;
    // Event numbers advance for every event, delivered or not (N7, N10).
    state.count += 1;
    const event = {
      number: state.count,
      timestamp: new Date().toISOString(),
      interaction,
      resourceType: subject.resourceType,
      id: subject.id,
      resource: interaction === 'delete' ? undefined : resource,
    };
    state.events.push(event);

    if (sub.status === 'requested' || sub.status === 'active') {
      this.#enqueue(sub, () => this.#notification(state, 'event-notification', [event]), {
        type: 'event-notification',
        eventNumber: event.number,
      });
    }
    // status `error`: keep counting (N11) but deliver nothing until re-activated.
  }

  // ---- notification bodies ---------------------------------------------------------

  /** R4 criteria notification: empty POST, or the resource itself with the payload MIME type. */
  #r4Notification(sub, resource) {
    const headers = { ...channelHeaders(sub) };
    let body = '';
    if (sub.channel.payload) {
      body = JSON.stringify(resource);
      headers['Content-Type'] = sub.channel.payload;
    }
    return { type: 'rest-hook', headers, body };
  }

  /** Backport notification (N6, N9): a history Bundle whose entry[0] is the status Parameters. */
  #notification(state, type, events) {
    const sub = state.sub;
    const content = payloadContent(sub);
    const bundle = this.notificationBundle(state, type, events, content);
    const headers = { 'Content-Type': sub.channel.payload || 'application/fhir+json', ...channelHeaders(sub) };
    return { type, headers, body: JSON.stringify(bundle) };
  }

  /** The status Parameters (profile backport-subscription-status-r4, N7). */
  statusParameters(state, type, events, content) {
    const sub = state.sub;
    const parameter = [
      { name: 'subscription', valueReference: { reference: `${this.baseUrl}/Subscription/${sub.id}` } },
    ];
    if (isBackport(sub) && content !== 'empty') {
      parameter.push({ name: 'topic', valueCanonical: sub.criteria });
    }
    parameter.push({ name: 'status', valueCode: state.status ?? sub.status });
    parameter.push({ name: 'type', valueCode: type });
    // valueString, as the IG's R4 profile has it (R4 has no integer64).
    parameter.push({ name: 'events-since-subscription-start', valueString: String(state.count) });
    for (const event of events) {
      const part = [
        { name: 'event-number', valueString: String(event.number) },
        { name: 'timestamp', valueInstant: event.timestamp },
      ];
      if (content !== 'empty') {
        // N9: empty payloads carry no focus
        part.push({ name: 'focus', valueReference: { reference: `${this.baseUrl}/${event.resourceType}/${event.id}` } });
      }
      parameter.push({ name: 'notification-event', part });
    }
    if (state.error) {
      parameter.push({
        name: 'error',
        valueCodeableConcept: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscription-error', code: state.error }],
        },
      });
    }
    return {
      resourceType: 'Parameters',
      id: randomUUID(),
      meta: { profile: [STATUS_PROFILE] },
      parameter,
    };
  }

  notificationBundle(state, type, events, content) {
    const status = this.statusParameters(state, type, events, content);
    const entry = [
      {
        fullUrl: `urn:uuid:${status.id}`,
        resource: status,
        // N6: entry[0].request mirrors $status
        request: { method: 'GET', url: `${this.baseUrl}/Subscription/${state.sub.id}/$status` },
        response: { status: '200' },
      },
    ];
    if (content !== 'empty') {
      for (const event of events) {
        const e = {
          fullUrl: `${this.baseUrl}/${event.resourceType}/${event.id}`,
          request: requestFor(event),
          response: { status: responseStatusFor(event) },
        };
        // id-only: fullUrl + request only (no resource). Every history entry keeps a
        // request and response (R4 bdl-3/bdl-4). full-resource: the version that
        // triggered the event; deletes have nothing to send (N9).
        if (content === 'full-resource' && event.resource) {
          e.resource = event.resource;
        }
        entry.push(e);
      }
    }
    return {
      resourceType: 'Bundle',
      id: randomUUID(),
      meta: { profile: [NOTIFICATION_PROFILE] },
      type: 'history',
      timestamp: new Date().toISOString(),
      entry,
    };
  }

  // ---- $status and $events (N10, N11) ------------------------------------------------

  /** Subscription/{id}/$status -> searchset Bundle with one status Parameters (type query-status). */
  async statusBundle(ids) {
    const subs = (await this.repo.all('Subscription')).filter((s) => !ids || ids.includes(s.id));
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      total: subs.length,
      entry: subs.map((sub) => {
        const state = this.states.get(sub.id) ?? { sub, count: 0, events: [] };
        state.sub = sub;
        const status = this.statusParameters(state, 'query-status', [], payloadContent(sub));
        return { fullUrl: `urn:uuid:${status.id}`, resource: status, search: { mode: 'match' } };
      }),
    };
  }

  /** Subscription/{id}/$events -> history Bundle (type query-event) of the stored events. */
  async eventsBundle(id, { since, until, content }) {
    const sub = await this.repo.readResource('Subscription', id);
    if (!isBackport(sub)) {
      throw new OperationOutcomeError(badRequest('$events is only defined for topic-based (backport) subscriptions'));
    }
    const state = this.states.get(id) ?? { sub, count: 0, events: [] };
    state.sub = sub;
    const wanted = content ?? payloadContent(sub);
    if (!CONTENT_CODES.has(wanted)) {
      throw new OperationOutcomeError(badRequest(`content must be empty | id-only | full-resource`));
    }
    const events = state.events.filter(
      (e) => (since === undefined || e.number >= since) && (until === undefined || e.number <= until)
    );
    return this.notificationBundle(state, 'query-event', events, wanted);
  }

  // ---- delivery -------------------------------------------------------------------

  #state(sub) {
    let state = this.states.get(sub.id);
    if (!state) {
      state = { sub, count: 0, events: [], queue: Promise.resolve(), timer: undefined, status: undefined, error: undefined };
      this.states.set(sub.id, state);
    }
    return state;
  }

  #dropState(id) {
    const state = this.states.get(id);
    if (state) {
      clearTimeout(state.timer);
      this.states.delete(id);
    }
  }

  /**
   * Appends a delivery to the subscription's queue. `build` makes { type, headers, body }
   * when the delivery's turn comes, so it sees the subscription's status at that time.
   */
  #enqueue(sub, build, { type, eventNumber, onResult } = {}) {
    const state = this.#state(sub);
    const generation = this.generation;
    state.queue = state.queue
      .then(async () => {
        if (generation !== this.generation || !this.states.has(sub.id)) return;
        const n = build();
        const ok = await this.#deliver({
          subscription: `Subscription/${sub.id}`,
          url: sub.channel.endpoint,
          method: 'POST',
          headers: withSignature(n.headers, n.body, secretOf(state.sub ?? sub)),
          body: n.body,
          type: n.type ?? type,
          eventNumber,
          timeout: timeoutMs(sub),
          generation,
        });
        if (ok !== undefined && onResult) await onResult(ok);
      })
      .catch((err) => log('delivery failed:', err.stack ?? err));
    if (isBackport(sub)) this.#armHeartbeat(state);
  }

  /**
   * One delivery: up to three attempts (first + two retries with a short delay); each
   * attempt is logged. Returns true / false, or undefined when dropped because paused.
   */
  async #deliver(d) {
    if (this.paused) {
      this.#logAttempt(d, { status: 'paused', attempt: 0 });
      return undefined;
    }
    for (let attempt = 1; attempt <= 1 + RETRY_DELAYS_MS.length; attempt++) {
      if (d.generation !== this.generation) return false;
      const result = await send(d, d.timeout);
      this.#logAttempt(d, { ...result, attempt });
      if (result.ok) return true;
      if (attempt <= RETRY_DELAYS_MS.length) await sleep(RETRY_DELAYS_MS[attempt - 1]);
    }
    log(`giving up on ${d.type} for ${d.subscription} -> ${d.url}`);
    return false;
  }

  #logAttempt(d, { status, error, attempt, ok }) {
    if (d.generation !== undefined && d.generation !== this.generation) return undefined;
    const entry = {
      seq: ++this.seq,
      subscription: d.subscription,
      url: d.url,
      method: d.method,
      status,
      ok: Boolean(ok),
      headers: d.headers,
      body: d.body,
      at: new Date().toISOString(),
      type: d.type,
      ...(d.eventNumber !== undefined ? { eventNumber: d.eventNumber } : {}),
      attempt,
      ...(error ? { error } : {}),
      ...(d.redeliveryOf !== undefined ? { redeliveryOf: d.redeliveryOf } : {}),
    };
    this.deliveries.push(entry);
    return entry;
  }

  /** Admin: re-send a logged delivery exactly (method, URL, headers, body). Ignores pause. */
  async redeliver(seq) {
    const original = this.deliveries.find((d) => d.seq === seq);
    if (!original) return undefined;
    const d = { ...original, redeliveryOf: seq, generation: this.generation };
    const result = await send(d, DEFAULT_TIMEOUT_MS);
    return this.#logAttempt(d, { ...result, attempt: 1 });
  }

  async #setStatus(id, status, error) {
    const state = this.states.get(id);
    if (!state) return;
    state.status = status;
    state.error = error;
    try {
      const sub = await this.repo.readResource('Subscription', id);
      if (sub.status !== status) {
        sub.status = status;
        // silent: an internal write, not a client change (no hooks, no notifications)
        const saved = await this.repo.updateResource(sub, { silent: true });
        state.sub = saved;
      }
    } catch (err) {
      log(`could not set Subscription/${id} to ${status}:`, err.message);
    }
  }

  // ---- heartbeats -------------------------------------------------------------------

  #armHeartbeat(state) {
    clearTimeout(state.timer);
    const seconds = heartbeatSeconds(state.sub);
    if (!seconds) return;
    state.timer = setTimeout(() => {
      if (!this.states.has(state.sub.id)) return;
      if ((state.status ?? state.sub.status) === 'active') {
        this.#heartbeat(state);
      } else {
        this.#armHeartbeat(state);
      }
    }, seconds * 1000);
    state.timer.unref();
  }

  #heartbeat(state) {
    this.#enqueue(state.sub, () => this.#notification(state, 'heartbeat', []), { type: 'heartbeat' });
  }

  /** Admin: a heartbeat on every active backport subscription now. Returns how many. */
  heartbeatNow() {
    let n = 0;
    for (const state of this.states.values()) {
      if (isBackport(state.sub) && (state.status ?? state.sub.status) === 'active') {
        this.#heartbeat(state);
        n++;
      }
    }
    return n;
  }

  /** Admin: forget subscriptions state, event logs and the delivery log. */
  reset() {
    this.generation++;
    for (const state of this.states.values()) clearTimeout(state.timer);
    this.states.clear();
    this.deliveries = [];
    this.paused = false;
    this.chain = Promise.resolve();
  }

  /** Resolves once every change so far has been processed and its deliveries finished. */
  async idle() {
    await this.chain;
    await Promise.all([...this.states.values()].map((s) => s.queue));
  }
}

function requestFor(event) {
  switch (event.interaction) {
    case 'create':
      return { method: 'POST', url: event.resourceType };
    case 'delete':
      return { method: 'DELETE', url: `${event.resourceType}/${event.id}` };
    default:
      return { method: 'PUT', url: `${event.resourceType}/${event.id}` };
  }
}

function responseStatusFor(event) {
  return { create: '201', update: '200', delete: '204' }[event.interaction] ?? '200';
}

/** Medplum's X-Signature: hex HMAC-SHA256 of the exact body bytes with the subscription secret. */
function withSignature(headers, body, secret) {
  if (!secret) return headers;
  return { ...headers, 'X-Signature': createHmac('sha256', secret).update(body ?? '').digest('hex') };
}

/** One HTTP attempt. Never throws: { ok, status } or { ok: false, status: 'error', error }. */
async function send(d, timeout) {
  const urlError = loopbackUrlError(d.url, 'delivery URL');
  if (urlError) return { ok: false, status: 'error', error: urlError };
  try {
    const res = await fetch(d.url, {
      method: d.method,
      headers: d.headers,
      body: d.body === '' ? undefined : d.body,
      signal: AbortSignal.timeout(timeout),
      redirect: 'manual',
    });
    await res.arrayBuffer().catch(() => undefined);
    return { ok: res.status >= 200 && res.status < 300, status: res.status };
  } catch (err) {
    const error = err.name === 'TimeoutError' ? `timeout after ${timeout} ms` : (err.cause?.code ?? err.message);
    return { ok: false, status: 'error', error };
  }
}
