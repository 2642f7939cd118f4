"""STOP / START / HELP recognition (DESIGN §7) and E.164 normalisation."""

from __future__ import annotations

import pytest

from appliance.inbound.keywords import ENGLISH, Keyword, KeywordTable, Language, normalise
from appliance.numbers import InvalidNumber, to_e164

TABLE = KeywordTable()


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", " Stop. ", "STOP!!", "stopall", "Unsubscribe", "cancel", "end", "quit",
     "opt-out", "OPTOUT", "revoke", "\tSTOP\n"],
)
def test_stop_family(text: str) -> None:
    match = TABLE.classify(text)
    assert match is not None and match.keyword is Keyword.STOP


@pytest.mark.parametrize("text", ["START", "unstop", "Yes."])
def test_start_family(text: str) -> None:
    match = TABLE.classify(text)
    assert match is not None and match.keyword is Keyword.START


@pytest.mark.parametrize("text", ["HELP", "info?"])
def test_help_family(text: str) -> None:
    match = TABLE.classify(text)
    assert match is not None and match.keyword is Keyword.HELP
    assert "STOP" in match.reply


@pytest.mark.parametrize(
    "text", ["please stop", "stop it", "STOPPED", "", "   ", "!!!", "Thanks, see you at 5"]
)
def test_sentences_and_other_words_are_not_keywords(text: str) -> None:
    assert TABLE.classify(text) is None


def test_normalise_strips_accents_and_punctuation() -> None:
    assert normalise("Arrête!") == "ARRETE"
    assert normalise("two words") == ""


def test_other_language_with_its_own_reply() -> None:
    french = Language.build("fr", stop=["Arrêt", "désabonner"], help=["aide"], stop_reply="Désabonné.")
    table = KeywordTable((ENGLISH, french))
    match = table.classify("ARRET")
    assert match is not None
    assert (match.keyword, match.language.name, match.reply) == (Keyword.STOP, "fr", "Désabonné.")
    assert table.classify("stop").language.name == "en"  # type: ignore[union-attr]


def test_stop_wins_when_a_word_is_in_two_lists() -> None:
    odd = Language.build("xx", start=["STOP"])
    table = KeywordTable((odd, ENGLISH))
    assert table.classify("stop").keyword is Keyword.STOP  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("0712 345678", "KE", "+254712345678"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
    ],
)
def test_e164(raw: str, region: str, expected: str) -> None:
    assert to_e164(raw, region) == expected


@pytest.mark.parametrize(("raw", "words"), [("", "empty"), ("abc", "not a phone number"),
                                            ("12", "not a valid"), ("+999 123", "country code")])
def test_invalid_numbers_say_why(raw: str, words: str) -> None:
    with pytest.raises(InvalidNumber, match=words):
        to_e164(raw, "US")


def test_table_from_settings() -> None:
    from appliance.config import KeywordLanguage, KeywordsSection

    table = KeywordTable.from_settings(KeywordsSection(
        help_reply="Call 555-0100.",
        languages=[KeywordLanguage(name="es", stop=["BAJA"], help=["AYUDA"], help_reply="Llame al 555-0100.")],
    ))
    assert [lang.name for lang in table.languages] == ["en", "es"]
    assert table.classify("help").reply == "Call 555-0100."  # type: ignore[union-attr]
    assert table.classify("Ayuda").reply == "Llame al 555-0100."  # type: ignore[union-attr]
    assert table.classify("baja").keyword is Keyword.STOP  # type: ignore[union-attr]
    assert table.reply_for(Keyword.HELP, "es") == "Llame al 555-0100."
    assert table.reply_for(Keyword.STOP, "xx") == table.languages[0].replies[Keyword.STOP]
    assert KeywordTable.from_settings(KeywordsSection(english=False)).classify("STOP") is None
