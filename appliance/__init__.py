"""On-premise SMS appliance: USB GSM modems, a durable queue and a local REST API.

Packages: :mod:`appliance.pdu` (SMS wire format), :mod:`appliance.modem` (AT transport,
driver, simulator, discovery), :mod:`appliance.queue` (store, scheduler, dispatcher),
:mod:`appliance.api` (FastAPI app).
"""

__version__ = "0.1.0"
