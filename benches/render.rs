//! Template rendering: Herald's `Renderer::render` against a bare
//! `fluent_bundle` `format_pattern` of the same SMS, measured in the same
//! group. The Node peer (`benches/node/render.mjs`) formats the same SMS with
//! the same arguments. See `benches/README.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::langid;

use herald::render::{self, MessageArgs, Renderer};

const MESSAGE: &str = "appointment-reminder";

/// The en-US source Herald embeds.
fn en_us() -> &'static str {
    render::LOCALES
        .iter()
        .find(|(l, _)| *l == "en-US")
        .map(|(_, src)| *src)
        .unwrap()
}

/// What the send path passes for a 24-hour reminder (same values as the
/// Node peer's arguments).
fn herald_args() -> MessageArgs {
    MessageArgs {
        practice: "Herald Demo Health".into(),
        phone: "+18005550100".into(),
        portal: "https://portal.example.org".into(),
        at: Some(Utc.with_ymd_and_hms(2026, 12, 3, 14, 30, 0).unwrap()),
        tz: Some(chrono_tz::America::New_York),
        clinician: Some("Dr. Priya Raman".into()),
        location: Some("Downtown Clinic".into()),
        hours: Some(24),
    }
}

/// The same en-US source with `appointment-reminder`'s `.subject`, `.email`
/// and `.voice` replaced by empty string literals, so that
/// `Renderer::render` formats only the SMS for real. Everything else it does
/// (negotiation, the argument map, ICU date and time, four attribute
/// lookups, segment counting) is unchanged.
fn sms_only_source() -> String {
    let src = en_us();
    let start = src.find("\nappointment-reminder =\n").unwrap() + 1;
    // The block ends where the next entry (a line at column 0) begins; the
    // blank lines inside `.email` are part of it.
    let rest = &src[start..];
    let len = rest
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| rest[i..].starts_with(|ch: char| !ch.is_whitespace()))
        .unwrap_or(rest.len());
    let block = &src[start..start + len];
    let sms: Vec<&str> = block
        .lines()
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with(".subject"))
        .collect();
    let replaced = format!(
        "{MESSAGE} =\n{}\n    .subject = {{\"\"}}\n    .email = {{\"\"}}\n    .voice = {{\"\"}}\n\n",
        sms.join("\n")
    );
    format!("{}{replaced}{}", &src[..start], &src[start + len..])
}

/// A bare bundle: the same en-US FTL, isolation marks off.
fn bare_bundle() -> FluentBundle<FluentResource> {
    let res = FluentResource::try_new(en_us().to_string()).unwrap();
    let mut bundle = FluentBundle::new_concurrent(vec![langid!("en-US")]);
    bundle.set_use_isolating(false);
    bundle.add_resource(res).unwrap();
    bundle
}

/// `.sms` of the message with pre-formatted string arguments, built fresh.
fn bare_format(bundle: &FluentBundle<FluentResource>) -> String {
    let mut args = FluentArgs::new();
    args.set("practice", FluentValue::from("Herald Demo Health"));
    args.set("phone", FluentValue::from("+18005550100"));
    args.set("portal", FluentValue::from("https://portal.example.org"));
    args.set("date", FluentValue::from("Thursday, December 3"));
    args.set("time", FluentValue::from("9:30 AM"));
    args.set("clinician", FluentValue::from("Dr. Priya Raman"));
    args.set("location", FluentValue::from("Downtown Clinic"));
    args.set("hours", FluentValue::from(24));
    let msg = bundle.get_message(MESSAGE).unwrap();
    let sms = msg.get_attribute("sms").unwrap();
    let mut errors = Vec::new();
    let out = bundle
        .format_pattern(sms.value(), Some(&args), &mut errors)
        .into_owned();
    debug_assert!(errors.is_empty());
    out
}

fn render(c: &mut Criterion) {
    let renderer = Renderer::embedded().unwrap();
    let sms_only = Renderer::from_sources([("en-US".to_string(), sms_only_source())]).unwrap();
    let bundle = bare_bundle();
    let args = herald_args();

    // Sanity: all three produce the same SMS.
    let full = renderer.render(Some("en-US"), MESSAGE, &args).unwrap();
    let only = sms_only.render(Some("en-US"), MESSAGE, &args).unwrap();
    let for_sms = renderer
        .render_for(Some("en-US"), MESSAGE, &args, herald::domain::Channel::Sms)
        .unwrap();
    let bare = bare_format(&bundle);
    assert_eq!(full.sms, bare);
    assert_eq!(only.sms, bare);
    assert_eq!(for_sms.sms, bare);
    assert!(only.subject.is_empty() && only.email.is_empty() && only.voice.is_empty());
    assert!(!full.email.is_empty());

    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));

    // Herald: negotiation, arguments, ICU date/time, four attributes, GSM-7 segments.
    group.bench_function("herald_render", |b| {
        b.iter(|| {
            renderer
                .render(
                    black_box(Some("en-US")),
                    black_box(MESSAGE),
                    black_box(&args),
                )
                .unwrap()
        })
    });

    // Herald as the send path calls it for a text: `render_for(.., Sms)`
    // formats only `.sms` (negotiation, arguments, ICU date/time, segments).
    group.bench_function("herald_render_for_sms", |b| {
        b.iter(|| {
            renderer
                .render_for(
                    black_box(Some("en-US")),
                    black_box(MESSAGE),
                    black_box(&args),
                    herald::domain::Channel::Sms,
                )
                .unwrap()
        })
    });

    // Bare: format `.sms` with pre-formatted string arguments.
    group.bench_function("bare_fluent_bundle", |b| {
        b.iter(|| bare_format(black_box(&bundle)))
    });
    group.finish();

    // Where Herald's extra time goes: the two steps the bare side skips.
    let formats = render::datetime::DateTimeFormats::new("en-US").unwrap();
    let at = args.at.unwrap();
    let tz = args.tz.unwrap();
    assert_eq!(formats.date(at, tz), "Thursday, December 3");
    assert_eq!(formats.time(at, tz), "9:30 AM");
    let mut parts = c.benchmark_group("render_parts");
    parts.throughput(Throughput::Elements(1));
    parts.bench_function("icu_date_and_time", |b| {
        b.iter(|| {
            (
                formats.date(black_box(at), black_box(tz)),
                formats.time(black_box(at), black_box(tz)),
            )
        })
    });
    parts.bench_function("gsm7_segments", |b| {
        b.iter(|| render::segments::analyze(black_box(&bare)))
    });
    parts.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = render
}
criterion_main!(benches);
