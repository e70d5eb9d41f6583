// Small helpers shared by the harness modules: logging, bodies, JSON replies,
// and the loopback-only guard for every URL the harness itself calls.

import { isIP } from 'node:net';

/** Logs go to stderr only: stdout carries exactly one JSON line (the ready line). */
export function log(...args) {
  process.stderr.write(`[interop ${new Date().toISOString()}] ${args.join(' ')}\n`);
}

/** Reads a whole request body into a Buffer (limit 8 MiB: the harness only sees test data). */
export async function readBody(req, limit = 8 * 1024 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) {
      throw Object.assign(new Error('request body too large'), { status: 413 });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Sends a JSON reply with the given status, content type and extra headers. */
export function sendJson(res, status, body, headers = {}, contentType = 'application/json; charset=utf-8') {
  const text = body === undefined ? '' : JSON.stringify(body, null, 2);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/**
 * The harness only ever talks to this machine: subscription endpoints and client
 * JWKS URLs must be http(s) URLs on the loopback interface (127.0.0.0/8, localhost, [::1]).
 * Returns an error string, or undefined when the URL is fine.
 */
export function loopbackUrlError(value, what) {
  let url;
  try {
    url = new URL(value);
  } catch {
    return `${what} is not an absolute URL: ${value}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `${what} must be http or https: ${value}`;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback =
    host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  if (!loopback) {
    return `${what} must point at this machine (127.0.0.0/8, localhost or [::1]); the harness never calls other hosts: ${value}`;
  }
  return undefined;
}

/** An http.Server listen(0) on 127.0.0.1, resolved with the chosen port. */
export function listenLoopback(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function deepClone(value) {
  return value === undefined ? undefined : structuredClone(value);
}
