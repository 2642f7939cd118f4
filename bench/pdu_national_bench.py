"""National language shift tables (3GPP TS 23.038): parts saved, and what planning costs.

Run: ``.venv/bin/python bench/pdu_national_bench.py [--repeats N] [--seconds S]``.

1. Parts a 300-character message takes in each of the 13 languages: UCS-2 (the baseline,
   planned in the same run) against the language's national tables, with the ratio.
2. Encode speed of a 300-character Hindi text: ``encode_submit`` as UCS-2 (the baseline)
   against the Hindi tables, all 13 languages allowed, and tables forced from a stored plan.
   Each figure is the median of several repeats, all in this process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.pdu import NATIONAL_LANGUAGES, encode_submit, plan  # noqa: E402
from common import rate  # noqa: E402
from tests.utils.national import SENTENCES  # noqa: E402

NUMBER = "+919876543210"


def _300(text: str) -> str:
    return ((text + " ") * (300 // len(text) + 1))[:300]


def parts_table() -> None:
    print("Parts for a 300-character message (baseline: UCS-2, planned in this run)")
    print(f"{'language':<11} {'UCS-2':>5} {'national':>8} {'ratio':>6}  tables")
    ratios = []
    for lang in NATIONAL_LANGUAGES:
        text = _300(SENTENCES[lang])
        ucs2 = plan(text)
        national = plan(text, national_languages=(lang,))
        ratio = national.total / ucs2.total
        ratios.append(ratio)
        print(f"{lang:<11} {ucs2.total:>5} {national.total:>8} {ratio:>6.2f}  "
              f"{national.encoding_label}")
    print(f"median ratio national/UCS-2: {statistics.median(ratios):.2f}\n")


def speed_table(repeats: int, seconds: float) -> None:
    text = _300(SENTENCES["hindi"])
    stored = plan(text, national_languages=("hindi",)).tables
    cases: dict[str, Callable[[], object]] = {
        "UCS-2 (baseline)": lambda: encode_submit(NUMBER, text, concat_ref=7),
        "Hindi tables": lambda: encode_submit(NUMBER, text, concat_ref=7,
                                              national_languages=("hindi",)),
        "13 languages allowed": lambda: encode_submit(NUMBER, text, concat_ref=7,
                                                      national_languages=NATIONAL_LANGUAGES),
        "tables from a plan": lambda: encode_submit(NUMBER, text, concat_ref=7,
                                                    shift_tables=stored),
    }
    rates = {name: statistics.median(rate(fn, seconds) for _ in range(repeats))
             for name, fn in cases.items()}
    base = rates["UCS-2 (baseline)"]
    print("encode_submit of a 300-character Hindi text (median of "
          f"{repeats} runs; ratio = time / UCS-2 time)")
    print(f"{'case':<22} {'parts':>5} {'encodes/s':>10} {'µs each':>8} {'ratio':>6}")
    for name, fn in cases.items():
        parts = len(fn())  # type: ignore[arg-type]
        print(f"{name:<22} {parts:>5} {rates[name]:>10.0f} {1e6 / rates[name]:>8.0f} "
              f"{base / rates[name]:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.2, help="per measurement")
    args = parser.parse_args()
    parts_table()
    speed_table(args.repeats, args.seconds)


if __name__ == "__main__":
    main()
