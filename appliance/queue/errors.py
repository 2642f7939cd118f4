"""Typed errors of the queue (defined by the data layer, :mod:`appliance.db.errors`)."""

from __future__ import annotations

from appliance.db.errors import *  # noqa: F403 (the queue's errors are the data layer's, all of them)
from appliance.db.errors import __all__ as __all__
