#!/usr/bin/env python3
"""Generate nanp_area_codes.tsv from libphonenumber's metadata.

Source: the PyPI package `phonenumbers` (a Python port of Google's
libphonenumber; the metadata is Apache-2.0), pinned below.

For every NANP (+1) area code NPA 200-999 we probe each central-office code
NXX 200-999 with a few line numbers until `phonenumbers.is_valid_number`
holds, so every lookup is done on a number libphonenumber itself calls valid.
Per NPA we then record:

  npa      3 digits
  country  ISO 3166-1 alpha-2 from `region_code_for_number` (US, CA, PR, JM...)
  region   US state / CA province two-letter code from the English geocoder
           description ("New York, NY" -> NY, "Ontario" -> ON); empty when
           unknown, outside US/CA, or non-geographic (toll-free, premium...)
  zones    sorted, comma-separated IANA zones from
           `timezone.time_zones_for_number`, united over *all* valid NXX of
           the NPA (libphonenumber's zone data is keyed down to NPA-NXX, so a
           single example number would miss e.g. 850's Central-time
           exchanges); empty for non-geographic numbers.

Usage (creates the venv and installs the pinned version if needed):

    python3 src/domain/data/generate_nanp.py

Writes nanp_area_codes.tsv next to this script. Prints a summary to stderr.
"""

import os
import subprocess
import sys
from collections import Counter

PHONENUMBERS_VERSION = "9.0.43"  # pinned; bump deliberately and regenerate
VENV = os.path.join(os.path.expanduser("~"), ".cache", "herald-venv-nanp")
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "nanp_area_codes.tsv")


def _ensure_venv():
    """Re-exec inside the venv with the pinned phonenumbers installed."""
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        try:
            import phonenumbers  # noqa: F401
            if phonenumbers.__version__ == PHONENUMBERS_VERSION:
                return
        except ImportError:
            pass
        subprocess.check_call([py, "-m", "pip", "install", "-q",
                               "phonenumbers==" + PHONENUMBERS_VERSION])
        os.execv(py, [py] + sys.argv)
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    os.execv(py, [py] + sys.argv)


_ensure_venv()

import phonenumbers as pn  # noqa: E402
from phonenumbers import geocoder, timezone  # noqa: E402
from phonenumbers.phonenumberutil import is_number_type_geographical  # noqa: E402
from phonenumbers.tzdata import TIMEZONE_DATA  # noqa: E402

assert pn.__version__ == PHONENUMBERS_VERSION, pn.__version__

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR",
    "California": "CA", "Colorado": "CO", "Connecticut": "CT",
    "Delaware": "DE", "District of Columbia": "DC", "Washington D.C.": "DC",
    "Washington DC": "DC", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI",
    "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME",
    "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO",
    "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND",
    "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "Washington State": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}
CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB",
    "New Brunswick": "NB", "Newfoundland and Labrador": "NL",
    "Newfoundland": "NL", "Nova Scotia": "NS", "Ontario": "ON",
    "Prince Edward Island": "PE", "Quebec": "QC", "Québec": "QC",
    "British Colombia": "BC",  # sic, as spelled in the geocoder data (257)
    "Saskatchewan": "SK", "Northwest Territories": "NT", "Nunavut": "NU",
    "Yukon": "YT", "Yukon Territory": "YT",
}
# Descriptions naming several regions ("Nova Scotia/Prince Edward Island",
# "Northwest Territories/Nunavut/Yukon") count as this ambiguous bucket; if
# it is the most common answer for an NPA, the region column stays empty.
SHARED = "*"
NAMES = {"US": US_STATES, "CA": CA_PROVINCES}

# Line numbers tried per NPA-NXX until one is valid. libphonenumber's NANP
# patterns are keyed on NPA-NXX (rarely deeper), so the first usually wins.
LINES = ["2345", "0000", "5678", "9999", "1000", "4000", "6000", "8000"]
# Zone list libphonenumber returns when it only knows the country (+1).
COUNTRY_LEVEL = tuple(TIMEZONE_DATA.get("1", ()))


def region_code(country, desc):
    """English geocoder description -> two-letter state/province code."""
    if country not in NAMES or not desc:
        return None
    names = NAMES[country]
    codes = set(names[k] for k in names if names[k])
    if desc in names:
        return names[desc]
    if "/" in desc and all(p.strip() in names for p in desc.split("/")):
        return SHARED
    if ", " in desc:  # "City, ST"
        tail = desc.rsplit(", ", 1)[1].strip()
        if tail in codes:
            return tail
        if tail in names:
            return names[tail]
    return None


def probe(npa, lines):
    """Yield (nxx, PhoneNumber) for each NXX with a valid number."""
    for nxx in range(200, 1000):
        for line in lines:
            num = pn.PhoneNumber(country_code=1,
                                 national_number=int("%d%d%s" % (npa, nxx, line)))
            if pn.is_valid_number(num):
                yield nxx, num
                break


def main():
    rows = []
    notes = []
    tz_npas = set(k[1:4] for k in TIMEZONE_DATA if k.startswith("1") and len(k) >= 4)
    for npa in range(200, 1000):
        countries, regions, zones, types = Counter(), Counter(), set(), Counter()
        unknown_desc = Counter()
        no_zone = 0
        found = list(probe(npa, LINES))
        if not found and str(npa) in tz_npas:
            # libphonenumber has zone data for this NPA but no probe matched:
            # try harder (every leading line digit pair).
            found = list(probe(npa, ["%02d00" % i for i in range(100)]))
        if not found:
            continue
        for nxx, num in found:
            country = pn.region_code_for_number(num)
            ntype = pn.number_type(num)
            countries[country] += 1
            types[ntype] += 1
            if not is_number_type_geographical(ntype, 1):
                continue
            tz = tuple(timezone.time_zones_for_number(num))
            if tz and tz != COUNTRY_LEVEL and tz != (timezone.UNKNOWN_TIMEZONE,):
                zones.update(tz)
            else:
                no_zone += 1
            desc = geocoder.description_for_number(num, "en")
            rc = region_code(country, desc)
            if rc:
                regions[rc] += 1
            elif country in NAMES and desc:
                unknown_desc[desc] += 1
        if len(countries) != 1:
            notes.append("%d: several countries %s" % (npa, dict(countries)))
        country = countries.most_common(1)[0][0]
        if len(regions) > 1:
            notes.append("%d: several regions %s (using most common; * = shared)"
                         % (npa, dict(regions)))
        if no_zone:
            notes.append("%d: %d geographic NXX without a specific zone (ignored)"
                         % (npa, no_zone))
        if unknown_desc:
            notes.append("%d: unmapped descriptions %s" % (npa, dict(unknown_desc)))
        region = regions.most_common(1)[0][0] if regions else ""
        if region == SHARED:
            region = ""
        geo = any(is_number_type_geographical(t, 1) for t in types)
        if geo and not zones:
            notes.append("%d: geographic but no specific zone" % npa)
        rows.append(("%03d" % npa, country, region, ",".join(sorted(zones))))

    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write("# NANP (+1) area codes; generated by generate_nanp.py from "
                "phonenumbers==%s (libphonenumber metadata, Apache-2.0). "
                "Do not edit by hand.\n" % PHONENUMBERS_VERSION)
        f.write("npa\tcountry\tregion\tzones\n")
        for r in sorted(rows):
            f.write("\t".join(r) + "\n")

    missing = sorted(tz_npas - set(r[0] for r in rows))
    if missing:
        notes.append("NPAs with zone data but no valid number found: %s" % missing)
    multi = [r for r in rows if "," in r[3]]
    print("phonenumbers %s: %d rows, %d multi-zone -> %s"
          % (pn.__version__, len(rows), len(multi), OUT), file=sys.stderr)
    for n in notes:
        print("note: " + n, file=sys.stderr)


if __name__ == "__main__":
    main()
