"""Reading and writing contact CSV files.

:func:`read_csv` decodes a file (UTF-8, a BOM is fine; the delimiter ``,`` ``;`` tab or
``|`` is detected), maps its columns to fields and returns the header and the data rows.
Column names map to fields by their normalised name (``"First Name"`` → ``first_name``),
with common aliases (``phone``, ``mobile``, ``msisdn`` → ``number``; ``surname`` →
``last_name``...). ``mapping`` (``{column: field}``, field ``""`` to skip a column)
overrides that. The special field ``groups`` holds ``;``-separated static group names.
Fatal problems (not UTF-8, not CSV, no header, no number column, a mapped column that is
not there) raise :class:`CsvError`.

:func:`write_csv` neutralises cells a spreadsheet would run as a formula (OWASP's "CSV
injection"): a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
gets a leading ``'``, except an E.164 number in the ``number`` column, which stays
importable as is. :func:`read_csv` takes such a ``'`` off again, so an export imports back
unchanged. :func:`read_import_file` reads a file named by path, only inside one directory.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from appliance.contacts.errors import CsvError, ImportPathError
from appliance.contacts.filters import FIELD_NAME
from appliance.numbers import E164, quoted

__all__ = ["CsvTable", "field_key", "neutralise", "read_csv", "read_import_file", "restore", "write_csv"]

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

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
            field="csv", detail=f"the file is not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' and try again"
        ) from None


def read_csv(data: bytes | str, mapping: Mapping[str, str] | None = None) -> CsvTable:
    """Decode and map a contacts CSV (see the module doc)."""
    text = _decode(data)
    if not text.strip():
        raise CsvError(field="csv", detail="the file is empty; the first line must name the columns (e.g. number,first_name)")
    first_line = text.split("\n", 1)[0]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter, quotechar='"',
                        doublequote=True, skipinitialspace=True, strict=True)
    try:
        header = next(reader)
        columns = tuple(restore(c).strip() for c in header)
        fields = _map_columns(columns, mapping or {})
        rows = [(reader.line_num, [restore(cell) for cell in row])
                for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise CsvError(field="csv", detail=f"line {reader.line_num} is not valid CSV: {exc}") from None
    return CsvTable(columns, fields, rows)


def _map_columns(columns: tuple[str, ...], mapping: Mapping[str, str]) -> tuple[str | None, ...]:
    if not any(columns):
        raise CsvError(field="csv", detail="the first line must name the columns (e.g. number,first_name,class)")
    named = _list_columns(columns)
    lowered = {c.lower(): i for i, c in enumerate(columns)}
    fields: list[str | None] = [ALIASES.get(field_key(c), field_key(c)) or None for c in columns]
    for column, field in mapping.items():
        index = lowered.get(column.strip().lower())
        if index is None:
            raise CsvError(
                field="csv", detail=f"--map names the column {quoted(column)}, which is not in the file; "
                f"its columns are: {named}"
            )
        field = field.strip()
        if field and not FIELD_NAME.fullmatch(field):
            raise CsvError(field="csv", detail=f"{field!r} is not a field name (letters, digits and _)")
        fields[index] = field or None
    seen: dict[str, str] = {}
    for column, field in zip(columns, fields, strict=True):
        if field is None:
            continue
        if field in seen:
            raise CsvError(
                field="csv", detail=f"the columns {quoted(seen[field])} and {quoted(column)} both go to the field {field!r}; "
                "map one elsewhere or skip it with --map COLUMN="
            )
        seen[field] = column
    if "number" not in seen:
        raise CsvError(
            field="csv", detail=f"no column holds the phone number (columns: {named}); "
            "name it 'number' or 'phone', or map it with --map COLUMN=number"
        )
    return tuple(fields)


def _list_columns(columns: tuple[str, ...], most: int = 20) -> str:
    """The header's names for a message: each cut short, at most ``most`` of them (the first
    line of a file that is no CSV of contacts is not echoed whole)."""
    shown = ", ".join(quoted(c) for c in columns[:most])
    return shown + (f" and {len(columns) - most} more" if len(columns) > most else "")


def neutralise(value: str, *, number: bool = False) -> str:
    """``value`` safe to open in a spreadsheet: a leading ``'`` when it starts like a
    formula (or with ``'`` before such a start, so :func:`restore` is exact). In the
    ``number`` column an E.164 number is left as it is."""
    if number and E164.fullmatch(value):
        return value
    return "'" + value if value.lstrip("'").startswith(FORMULA_STARTS) else value


def restore(cell: str) -> str:
    """The value :func:`neutralise` was given."""
    return cell[1:] if cell.startswith("'") and cell[1:].lstrip("'").startswith(FORMULA_STARTS) else cell


def write_csv(rows: Iterable[Mapping[str, str]], columns: list[str]) -> str:
    """CSV text with a header row of ``columns`` (UTF-8 without BOM, ``\\r\\n`` lines),
    each cell passed through :func:`neutralise`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralise(c) for c in columns])
    for row in rows:
        cells = ("" if (value := row.get(c)) is None else str(value) for c in columns)
        writer.writerow([neutralise(cell, number=c == "number") for c, cell in zip(columns, cells, strict=True)])
    return out.getvalue()


def read_import_file(directory: Path, name: str, limit: int) -> bytes:
    """The bytes of the file ``name`` (relative to ``directory``, or absolute inside it).

    Refused with :class:`ImportPathError`: a name with a NUL byte; a path that leaves
    ``directory`` (``..`` or a symbolic link pointing out); anything but a regular file
    (a FIFO, a device, a directory: opened without blocking, checked before reading); a
    file over ``limit`` bytes (checked before reading, and again while reading).
    """
    if "\x00" in name:
        raise ImportPathError(field="path", detail="the path contains a NUL byte")
    if not name.strip():
        raise ImportPathError(field="path", detail="give the name of a file in the import directory")
    base = Path(os.path.realpath(directory))
    target = Path(os.path.realpath(base / name))  # an absolute name replaces base
    if not target.is_relative_to(base):
        raise ImportPathError(
            field="path", detail=f"only files in the import directory {base} can be imported by path "
            "([contacts] import_dir); copy the file there, or upload it"
        )
    shown = target.relative_to(base)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ImportPathError(field="path", detail=f"there is no file {shown} in the import directory {base}") from None
    except OSError as exc:
        raise ImportPathError(field="path", detail=f"cannot open {shown}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImportPathError(field="path", detail=f"{shown} is not a regular file")
        too_big = ImportPathError(
            field="path", detail=f"{shown} is over {limit // (1024 * 1024)} MB, the most one import takes; split it"
        )
        if info.st_size > limit:
            raise too_big
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise too_big
    return data
