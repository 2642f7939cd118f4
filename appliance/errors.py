"""The root of the appliance's typed errors.

Each package derives its own (``PduError``, ``ModemError``, ``QueueError``, ...) from
:class:`ApplianceError`, so a caller can catch everything the appliance raises on purpose
without catching programming errors.
"""


class ApplianceError(Exception):
    """Base class of every error the appliance raises deliberately."""
