"""``python -m appliance.cli``."""

from appliance.cli import main

main()
