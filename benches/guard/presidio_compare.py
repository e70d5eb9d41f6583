#!/usr/bin/env python3
"""Presidio (pattern recognizers only) vs `herald guard` on the labelled corpus: recall on the
entity kinds both detect, and texts per second, in the same run.

    python3 benches/guard/presidio_compare.py PATH/TO/release/herald [--seconds 5]

Creates or reuses a venv at $HOME/.cache/herald-venv-guard with presidio-analyzer (no spaCy model:
the PatternRecognizers are called directly, as in performance.md row g''), then re-runs itself
inside it. Presidio runs its 16 default pattern recognizers with no NLP (PhoneRecognizer, which
uses the phonenumbers library rather than a regex, is timed separately). Herald is timed as the
whole CLI process over the corpus repeated, so its figure includes start-up and JSON I/O.
"""
import json
import os
import subprocess
import sys
import time

VENV = os.path.expanduser("~/.cache/herald-venv-guard")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fixtures", "guard", "corpus.jsonl")
# Presidio entity -> guard kind (only the kinds both detect).
MAP = {"PHONE_NUMBER": "phone", "EMAIL_ADDRESS": "email", "US_SSN": "ssn", "DATE_TIME": "dob",
       "URL": "url", "IP_ADDRESS": "ip", "CREDIT_CARD": "account", "US_BANK_NUMBER": "account",
       "US_DRIVER_LICENSE": "license", "MEDICAL_LICENSE": "license", "IBAN_CODE": "account"}
SHARED = sorted(set(MAP.values()))


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.prefix) == os.path.abspath(VENV):
        return
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    if subprocess.call([py, "-c", "import presidio_analyzer"], stderr=subprocess.DEVNULL) != 0:
        subprocess.check_call([py, "-m", "pip", "install", "-q", "presidio-analyzer"])
    os.execv(py, [py] + sys.argv)


def recognizers():
    from presidio_analyzer import predefined_recognizers as pr
    names = ["CreditCardRecognizer", "CryptoRecognizer", "DateRecognizer", "EmailRecognizer",
             "IbanRecognizer", "IpRecognizer", "MedicalLicenseRecognizer", "UrlRecognizer",
             "UsBankRecognizer", "UsLicenseRecognizer", "UsItinRecognizer", "UsPassportRecognizer",
             "UsSsnRecognizer", "NhsRecognizer", "AbaRoutingRecognizer", "SgFinRecognizer",
             "AuAbnRecognizer", "AuAcnRecognizer", "AuTfnRecognizer", "AuMedicareRecognizer"]
    recs = [getattr(pr, n)() for n in names if hasattr(pr, n)]
    return recs[:16], pr.PhoneRecognizer()


def presidio_scan(recs, text):
    out = []
    for r in recs:
        out.extend(r.analyze(text, r.supported_entities, None))
    return out


def rate(fn, texts, seconds):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for t in texts:
            fn(t)
        n += len(texts)
    return n / (time.perf_counter() - t0)


def recall(recs_findings, corpus):
    found = {k: 0 for k in SHARED}
    total = {k: 0 for k in SHARED}
    for r, fs in zip(corpus, recs_findings):
        for s in r["spans"]:
            if s["kind"] not in total:
                continue
            total[s["kind"]] += 1
            if any(k == s["kind"] and a < s["end"] and s["start"] < b for k, a, b in fs):
                found[s["kind"]] += 1
    return found, total


def main():
    ensure_venv()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = 5.0
    if "--seconds" in sys.argv:
        seconds = float(sys.argv[sys.argv.index("--seconds") + 1])
    herald = args[0] if args else os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "herald")
    corpus = [json.loads(l) for l in open(CORPUS, encoding="utf-8")]
    texts = [r["text"] for r in corpus]
    import logging
    logging.disable(logging.CRITICAL)  # tldextract warns that it has no network, then uses its snapshot
    import presidio_analyzer
    recs, phone = recognizers()

    # Recall on the shared kinds. Presidio's hits are mapped to guard kinds; all 17 recognizers.
    p_findings = []
    for t in texts:
        fs = [(MAP[x.entity_type], x.start, x.end) for x in presidio_scan(recs + [phone], t)
              if x.entity_type in MAP]
        p_findings.append(fs)
    lines = "".join(json.dumps({"text": r["text"], "lang": r["lang"], "allowed": r["allowed"]},
                               ensure_ascii=False) + "\n" for r in corpus)
    env = {"PATH": os.environ.get("PATH", ""), "HERALD_DATA_DIR": "/tmp/herald-guard-bench"}
    out = subprocess.run([herald, "guard"], input=lines.encode(), capture_output=True, env=env, check=True)
    h_findings = [[(f["kind"], f["start"], f["end"]) for f in json.loads(l)["findings"]]
                  for l in out.stdout.decode().splitlines()]
    pf, total = recall(p_findings, corpus)
    hf, _ = recall(h_findings, corpus)

    # Throughput, alternating: Presidio patterns, Herald CLI, Presidio patterns + phone.
    p_rate = rate(lambda t: presidio_scan(recs, t), texts, seconds)
    reps = 200
    big = (lines * reps).encode()
    t0 = time.perf_counter()
    subprocess.run([herald, "guard"], input=big, stdout=subprocess.DEVNULL, env=env, check=True)
    h_rate = len(texts) * reps / (time.perf_counter() - t0)
    pp_rate = rate(lambda t: presidio_scan(recs + [phone], t), texts, seconds)

    from importlib.metadata import version
    print(f"presidio-analyzer {version('presidio-analyzer')}"
          f" pattern recognizers: {', '.join(type(r).__name__ for r in recs)}")
    print(f"corpus: {len(texts)} texts")
    print(f"{'kind':<8} {'spans':>5} {'presidio':>9} {'herald':>7}")
    for k in SHARED:
        if total[k]:
            print(f"{k:<8} {total[k]:>5} {pf[k] / total[k]:>9.3f} {hf[k] / total[k]:>7.3f}")
    st = sum(total.values())
    print(f"{'all':<8} {st:>5} {sum(pf.values()) / st:>9.3f} {sum(hf.values()) / st:>7.3f}")
    print(f"presidio patterns (16, no phone): {p_rate:,.0f} texts/s")
    print(f"presidio patterns + PhoneRecognizer: {pp_rate:,.0f} texts/s")
    print(f"herald guard CLI (whole process, {len(texts) * reps} texts): {h_rate:,.0f} texts/s")
    print(f"ratio herald CLI / presidio patterns: {h_rate / p_rate:,.0f}x")


if __name__ == "__main__":
    main()
