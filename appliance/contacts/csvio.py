"""Reading and writing contact CSV files.

:func:`read_csv` decodes a file (UTF-8, a BOM is fine; the delimiter ``,`` ``;`` tab or
``|`` is detected), maps its columns to fields and returns the header and the data rows.
Column names map to fields by their normalised name (``"First Name"`` → ``first_name``),
with common aliases (``phone``, ``mobile``, ``msisdn`` → ``number``; ``surname`` →
``last_name``...). ``mapping`` (``{column: field}``, field ``""`` to skip a column)
overrides that. The special field ``groups`` holds ``;``-separated static group names.
Fatal problems (not UTF-8, not CSV, no header, no number column, a mapped column that is
not there) raise :class:`CsvError`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from appliance.contacts.errors import CsvError
from appliance.contacts.filters import FIELD_NAME

__all__ = ["CsvTable", "field_key", "read_csv", "write_csv"]

ALIASES = {
    "number": "number", "phone": "number", "phone_number": "number", "mobile": "number",
    "mobile_number": "number", "msisdn": "number", "tel": "number", "telephone": "number",
    "cell": "number", "cell_phone": "number",
    "first_name": "first_name", "firstname": "first_name", "first": "first_name", "given_name": "first_name",
    "last_name": "last_name", "lastname": "last_name", "last": "last_name", "surname": "last_name",
    "family_name": "last_name",
    "name": "name", "full_name": "name", "fullname": "name",
    "groups": "groups",
}


def field_key(column: str) -> str:
    """``"First Name"`` → ``"first_name"``."""
    key = re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")
    if key and key[0].isdigit():
        key = "_" + key
    return key


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A decoded CSV file: ``fields[i]`` is the field of column ``i`` (``None``: skipped);
    ``rows`` are ``(line, cells)`` with the file's line number of each record."""

    columns: tuple[str, ...]
    fields: tuple[str | None, ...]
    rows: list[tuple[int, list[str]]]


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvError(
            f"csv: the file is not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' and try again"
        ) from None


def read_csv(data: bytes | str, mapping: Mapping[str, str] | None = None) -> CsvTable:
    """Decode and map a contacts CSV (see the module doc)."""
    text = _decode(data)
    if not text.strip():
        raise CsvError("csv: the file is empty; the first line must name the columns (e.g. number,first_name)")
    first_line = text.split("\n", 1)[0]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter, quotechar='"',
                        doublequote=True, skipinitialspace=True, strict=True)
    try:
        header = next(reader)
        columns = tuple(c.strip() for c in header)
        fields = _map_columns(columns, mapping or {})
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise CsvError(f"csv: line {reader.line_num} is not valid CSV: {exc}") from None
    return CsvTable(columns, fields, rows)


def _map_columns(columns: tuple[str, ...], mapping: Mapping[str, str]) -> tuple[str | None, ...]:
    if not any(columns):
        raise CsvError("csv: the first line must name the columns (e.g. number,first_name,class)")
    lowered = {c.lower(): i for i, c in enumerate(columns)}
    fields: list[str | None] = [ALIASES.get(field_key(c), field_key(c)) or None for c in columns]
    for column, field in mapping.items():
        index = lowered.get(column.strip().lower())
        if index is None:
            raise CsvError(
                f"csv: --map names the column {column!r}, which is not in the file; "
                f"its columns are: {', '.join(columns)}"
            )
        field = field.strip()
        if field and not FIELD_NAME.fullmatch(field):
            raise CsvError(f"csv: {field!r} is not a field name (letters, digits and _)")
        fields[index] = field or None
    seen: dict[str, str] = {}
    for column, field in zip(columns, fields, strict=True):
        if field is None:
            continue
        if field in seen:
            raise CsvError(
                f"csv: the columns {seen[field]!r} and {column!r} both go to the field {field!r}; "
                "map one elsewhere or skip it with --map COLUMN="
            )
        seen[field] = column
    if "number" not in seen:
        raise CsvError(
            f"csv: no column holds the phone number (columns: {', '.join(columns)}); "
            "name it 'number' or 'phone', or map it with --map COLUMN=number"
        )
    return tuple(fields)


def write_csv(rows: Iterable[Mapping[str, str]], columns: list[str]) -> str:
    """CSV text with a header row of ``columns`` (UTF-8 without BOM, ``\\r\\n`` lines)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
