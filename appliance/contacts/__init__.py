"""Contacts and groups: the people broadcasts go to.

- :class:`ContactBook` — contacts (E.164 number, name, free fields), groups (static
  members plus a filter), CSV import with a per-row report and CSV export, audiences;
- :func:`parse_filter` — group filters like ``class = "5B"`` (compiled to SQL by
  :mod:`appliance.db.contacts`);
- errors: :class:`ContactNotFound`, :class:`GroupNotFound`, :class:`ContactExists`,
  :class:`CsvError`, :class:`FilterError`.
"""

from __future__ import annotations

from appliance.contacts.book import (
    RESERVED_FIELDS,
    ContactBook,
    ContactView,
    GroupView,
    ImportReport,
    ImportRow,
    Recipient,
)
from appliance.contacts.csvio import read_csv, write_csv
from appliance.contacts.errors import ContactExists, ContactNotFound, CsvError, FilterError, GroupNotFound
from appliance.contacts.filters import Condition, parse_filter

__all__ = [
    "RESERVED_FIELDS",
    "Condition",
    "ContactBook",
    "ContactExists",
    "ContactNotFound",
    "ContactView",
    "CsvError",
    "FilterError",
    "GroupNotFound",
    "GroupView",
    "ImportReport",
    "ImportRow",
    "Recipient",
    "parse_filter",
    "read_csv",
    "write_csv",
]
