#!/usr/bin/env node
'use strict';
// Self-test for validate.js: pipes known-good and known-bad R4 AuditEvents
// through it and checks every verdict and the exit code.
// Run: node tests/validator/selftest.js   (after npm ci --prefix tests/validator)
const { spawnSync } = require('child_process');
const path = require('path');

const VALID = {
  resourceType: 'AuditEvent',
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
  subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read', display: 'read' }],
  action: 'R',
  recorded: '2026-12-01T17:00:00Z',
  outcome: '0',
  agent: [{
    type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110153', display: 'Source Role ID' }] },
    who: { identifier: { value: 'herald' } },
    requestor: false,
  }],
  source: { observer: { display: 'Herald' } },
  entity: [{
    what: { reference: 'Patient/pat-001' },
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
    role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
  }],
};
const v = (f) => { const x = structuredClone(VALID); f(x); return x; };

// [name, resource, expected valid?, substring that must appear in an error]
const CASES = [
  ['valid rest read', VALID, true],
  ['valid DCM export, requestor true, offset instant, query', v((x) => {
    x.type = { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110106', display: 'Export' };
    x.agent[0].requestor = true;
    x.recorded = '2026-12-01T18:00:00.123+01:00';
    x.entity[0].query = Buffer.from('_id=pat-001&_count=10').toString('base64');
  }), true],
  ['missing recorded', v((x) => { delete x.recorded; }), false, 'recorded'],
  ['action X', v((x) => { x.action = 'X'; }), false, 'action'],
  ['unknown property foo', v((x) => { x.foo = 'bar'; }), false, "unknown property 'foo'"],
  ['agent without requestor', v((x) => { delete x.agent[0].requestor; }), false, 'requestor'],
  ['outcome 3', v((x) => { x.outcome = '3'; }), false, 'outcome'],
  ['missing type', v((x) => { delete x.type; }), false, 'type'],
  ['agent empty', v((x) => { x.agent = []; }), false, 'agent'],
  ['source without observer', v((x) => { delete x.source.observer; }), false, 'observer'],
  ['sev-1 name and query', v((x) => { x.entity[0].name = 'n'; x.entity[0].query = 'cT0x'; }), false, 'sev-1'],
  ['recorded date only', v((x) => { x.recorded = '2026-12-01'; }), false, 'recorded'],
  ['recorded without zone', v((x) => { x.recorded = '2026-12-01T17:00:00'; }), false, 'recorded'],
  ['recorded Feb 30', v((x) => { x.recorded = '2026-02-30T17:00:00Z'; }), false, 'invalid date'],
  ['requestor as string', v((x) => { x.agent[0].requestor = 'false'; }), false, 'requestor'],
  ['unknown agent property', v((x) => { x.agent[0].bogus = 1; }), false, "unknown property 'bogus'"],
  ['empty who (ele-1)', v((x) => { x.agent[0].who = {}; }), false, 'ele-1'],
  ['type as CodeableConcept', v((x) => { x.type = { coding: [x.type] }; }), false, 'coding'],
  ['query not base64', v((x) => { x.entity[0].query = 'not base64!'; }), false, 'base64'],
  ['unknown resourceType', v((x) => { x.resourceType = 'AuditEvnt'; }), false, 'resourceType'],
];

const input = CASES.map((c) => JSON.stringify(c[1])).join('\n') + '\n';
const res = spawnSync(process.execPath, [path.join(__dirname, 'validate.js')], { input, encoding: 'utf8' });
const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l));

let passed = 0;
let failed = 0;
CASES.forEach(([name, , expectValid, needle], i) => {
  const got = lines[i];
  let ok = got && got.line === i + 1 && got.valid === expectValid;
  if (ok && needle) ok = got.errors.some((e) => e.includes(needle));
  if (ok) passed += 1;
  else {
    failed += 1;
    console.log(`FAIL ${name}: expected valid=${expectValid}${needle ? ` with error ~ ${needle}` : ''}, got ${JSON.stringify(got)}`);
  }
});
const expectCode = CASES.some((c) => !c[2]) ? 1 : 0;
if (res.status === expectCode) passed += 1;
else {
  failed += 1;
  console.log(`FAIL exit code: expected ${expectCode}, got ${res.status} ${res.stderr}`);
}
const empty = spawnSync(process.execPath, [path.join(__dirname, 'validate.js')], { input: '', encoding: 'utf8' });
if (empty.status === 2) passed += 1;
else { failed += 1; console.log(`FAIL empty input: expected exit 2, got ${empty.status}`); }
const bad = spawnSync(process.execPath, [path.join(__dirname, 'validate.js')], { input: '{nope\n', encoding: 'utf8' });
if (bad.status === 2) passed += 1;
else { failed += 1; console.log(`FAIL unparsable line: expected exit 2, got ${bad.status}`); }

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
