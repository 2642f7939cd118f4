"""Encode throughput of appliance.pdu.encode_submit against gsmmodem.pdu.encodeSmsSubmitPdu.

Run: ``.venv/bin/python bench/pdu_bench.py [--repeats N] [--seconds S]``. Both encoders run in
the same process on the same corpus; each figure is the median of several repeats. The ratio
is computed on the texts gsmmodem can encode (it crashes on emoji).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.pdu import encode_submit  # noqa: E402
from common import rate  # noqa: E402

NUMBER = "+46708251358"
CORPUS: dict[str, str] = {
    "short GSM-7": "Your verification code is 482913. It expires in 10 minutes.",
    "long GSM-7": (
        "Dear customer, your parcel 7731-AX will be delivered tomorrow between 08:00 and "
        "12:00. If nobody is at home, the driver leaves it at the nearest pick-up point; "
        "bring an ID. Reply STOP to stop these messages. "
    ) * 3,
    "extension heavy": "Total: 12€ {incl. VAT} [ref ~42] ^ | \\ " * 8,
    "UCS-2": "Здравствуйте! Ваш заказ №5521 отправлен и будет доставлен завтра. " * 3,
    "emoji": "Happy birthday 🎉🎂🥳 from all of us 👨‍👩‍👧‍👦❤️ " * 3,
}


def _ours(text: str) -> Callable[[], object]:
    return lambda: encode_submit(NUMBER, text, concat_ref=7, smart_encoding=False)


def _theirs(text: str) -> Callable[[], object] | None:
    try:
        from gsmmodem.pdu import encodeSmsSubmitPdu
    except ImportError:
        return None

    def run() -> object:
        return encodeSmsSubmitPdu(NUMBER, text, reference=7)

    try:
        run()
    except Exception:  # noqa: BLE001 — a crash means "cannot encode this text"
        return None
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.2, help="per measurement")
    args = parser.parse_args()

    print(f"{'text':<16} {'parts':>5} {'ours/s':>10} {'gsmmodem/s':>11} {'ratio':>7}")
    ratios = []
    ours_total = theirs_total = 0.0
    for name, text in CORPUS.items():
        ours, theirs = _ours(text), _theirs(text)
        parts = len(ours())
        ours_rates, theirs_rates = [], []
        for _ in range(args.repeats):
            ours_rates.append(rate(ours, args.seconds))
            if theirs is not None:
                theirs_rates.append(rate(theirs, args.seconds))
        o = statistics.median(ours_rates)
        if theirs is None:
            print(f"{name:<16} {parts:>5} {o:>10.0f} {'(crashes)':>11} {'-':>7}")
            continue
        t = statistics.median(theirs_rates)
        ratios.append(o / t)
        ours_total += 1 / o
        theirs_total += 1 / t
        print(f"{name:<16} {parts:>5} {o:>10.0f} {t:>11.0f} {o / t:>6.1f}×")
    if ratios:
        # Corpus ratio: time for gsmmodem to encode the common corpus once / time for ours.
        print(f"corpus throughput ratio (common texts): {theirs_total / ours_total:.1f}×  "
              f"(per-text median {statistics.median(ratios):.1f}×, min {min(ratios):.1f}×)")


if __name__ == "__main__":
    main()
