// Admin routes under /_admin on the FHIR listener. No auth: they exist for tests only.
//
//   GET  /_admin/deliveries      every delivery attempt (see SubscriptionEngine#logAttempt)
//   POST /_admin/redeliver       {"seq": N} -> re-send that exact delivery, answer its status
//                                (a duplicate notification, to test idempotent receipt: N12)
//   POST /_admin/pause|resume    drop deliveries (logged "paused") / deliver again
//   POST /_admin/reset           empty the FHIR store, subscriptions, event logs, delivery log
//   POST /_admin/clients         register or replace an OAuth client
//   POST /_admin/launch          {"patient","encounter"} -> {"launch": "<token>", ...}
//   POST /_admin/heartbeat-now   a heartbeat on every active topic subscription now
//   GET  /_admin/idle            answers once every pending change and delivery is done
//   GET  /_admin/stats           {"deliveries", "failures", "paused", "subscriptions"}

import { readBody, sendJson } from './util.mjs';

export function createAdmin({ repo, engine, fhir, oauth }) {
  async function json(req) {
    const raw = await readBody(req);
    if (raw.length === 0) return {};
    return JSON.parse(raw.toString('utf8'));
  }

  return async function handle(req, res, url) {
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '')}`;
    try {
      switch (route) {
        case 'GET /_admin/requests': {
          // Every FHIR request: {method, path, query, client, status}; ?client= filters.
          const client = url.searchParams.get('client');
          return sendJson(res, 200, fhir.requests.filter((r) => !client || r.client === client));
        }

        case 'GET /_admin/deliveries':
          return sendJson(res, 200, engine.deliveries);

        case 'POST /_admin/redeliver': {
          const { seq } = await json(req);
          const entry = await engine.redeliver(Number(seq));
          if (!entry) return sendJson(res, 404, { error: `no delivery with seq ${seq}` });
          return sendJson(res, 200, entry);
        }

        case 'POST /_admin/pause':
          engine.paused = true;
          return sendJson(res, 200, { paused: true });

        case 'POST /_admin/resume':
          engine.paused = false;
          return sendJson(res, 200, { paused: false });

        case 'POST /_admin/reset':
          engine.reset();
          repo.clear();
          return sendJson(res, 200, { reset: true });

        case 'POST /_admin/clients': {
          const client = await oauth.registerClient(await json(req));
          const { client_secret: _secret, ...shown } = client;
          return sendJson(res, 201, shown);
        }

        case 'POST /_admin/launch':
          return sendJson(res, 201, oauth.createLaunch(await json(req)));

        case 'POST /_admin/heartbeat-now':
          return sendJson(res, 200, { sent: engine.heartbeatNow() });

        case 'GET /_admin/stats':
          return sendJson(res, 200, {
            deliveries: engine.deliveries.length,
            // attempts that did not get a 2xx (status "error" or an HTTP status); "paused" drops excluded
            failures: engine.deliveries.filter((d) => !d.ok && d.status !== 'paused').length,
            paused: engine.paused,
            subscriptions: engine.states.size,
          });

        case 'GET /_admin/idle':
          await engine.idle();
          return sendJson(res, 200, { idle: true });

        default:
          return sendJson(res, 404, { error: `no admin route ${route}` });
      }
    } catch (err) {
      if (err instanceof SyntaxError) {
        return sendJson(res, 400, { error: 'invalid_request', error_description: `body is not JSON: ${err.message}` });
      }
      return sendJson(res, err.statusCode ?? err.status ?? 500, {
        error: err.error ?? 'server_error',
        error_description: err.error_description ?? err.message,
      });
    }
  };
}
