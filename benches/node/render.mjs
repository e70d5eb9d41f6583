// Peer benchmark: how fast does @fluent/bundle (the reference JavaScript
// implementation of Fluent) render Herald's en-US appointment-reminder SMS?
//
//   cd benches/node && npm ci && node render.mjs
//
// Prints one JSON line on stdout:
//   {"impl":"@fluent/bundle","version":"…","msgs_per_s":<median>,"runs":[…]}
// and the rendered SMS once on stderr, to compare with Herald's Rust output.

import { readFileSync } from "node:fs";
import { FluentBundle, FluentResource } from "@fluent/bundle";

const WARMUP_MS = 1000;
const RUN_MS = 1000;
const RUNS = 5;
const BATCH = 256; // renders between clock reads

const here = (p) => new URL(p, import.meta.url);
const version = JSON.parse(
  readFileSync(here("./node_modules/@fluent/bundle/package.json"), "utf8"),
).version;

const source = readFileSync(here("../../locales/en-US/messages.ftl"), "utf8");
const bundle = new FluentBundle("en-US", { useIsolating: false });
const resourceErrors = bundle.addResource(new FluentResource(source));
if (resourceErrors.length > 0) {
  console.error("locales/en-US/messages.ftl:", resourceErrors);
  process.exit(1);
}
const message = bundle.getMessage("appointment-reminder");
const pattern = message?.attributes?.sms;
if (!pattern) {
  console.error("appointment-reminder.sms not found");
  process.exit(1);
}

// A new args object on every call, as a server building one per message would.
const args = () => ({
  practice: "Herald Demo Health",
  phone: "+18005550100",
  portal: "https://portal.example.org",
  date: "Thursday, December 3",
  time: "9:30 AM",
  clinician: "Dr. Priya Raman",
  location: "Downtown Clinic",
  hours: 24,
});

// Once, with errors collected, so a broken template fails loudly.
const errors = [];
const rendered = bundle.formatPattern(pattern, args(), errors);
if (errors.length > 0) {
  console.error("format errors:", errors);
  process.exit(1);
}
console.error(rendered);

let sink = 0; // keeps the result observable so the work is not optimised away

// Renders for at least `ms` milliseconds; returns renders per second.
function run(ms) {
  const budget = BigInt(ms) * 1_000_000n;
  const start = process.hrtime.bigint();
  let n = 0;
  let elapsed = 0n;
  do {
    for (let i = 0; i < BATCH; i++) {
      // No errors array: @fluent/bundle throws on the first error.
      sink += bundle.formatPattern(pattern, args()).length;
    }
    n += BATCH;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  return n / (Number(elapsed) / 1e9);
}

run(WARMUP_MS);
const runs = [];
for (let r = 0; r < RUNS; r++) runs.push(Math.round(run(RUN_MS)));
const sorted = [...runs].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)];

if (sink === 0) console.error("unexpected empty output");
console.log(
  JSON.stringify({ impl: "@fluent/bundle", version, msgs_per_s: median, runs }),
);
