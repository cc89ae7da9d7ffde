"""A local, API-faithful emulator of Alibaba Model Studio's ``wan2.7-videoedit`` (DashScope) HTTP API.

    from local.emulator import Emulator, ManualClock
    clock = ManualClock()
    with Emulator(api_key="sk-test", clock=clock) as emu:
        ...  # point clients at emu.base_url (API under emu.base_url + "/api/v1")
        emu.advance(90)  # seconds on the shared clock

Run standalone with ``python -m local.emulator --help``.
"""

from .accounts import DEFAULT_ACCOUNT, parse_account_spec
from .clock import ManualClock, WallClock, fmt_cst
from .faults import Faults
from .server import Emulator

__all__ = [
    "DEFAULT_ACCOUNT",
    "Emulator",
    "Faults",
    "ManualClock",
    "WallClock",
    "fmt_cst",
    "parse_account_spec",
]
