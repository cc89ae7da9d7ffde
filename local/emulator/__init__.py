"""A local, API-faithful emulator of Alibaba Model Studio's ``wan2.7-videoedit`` (DashScope) HTTP API.

    from local.emulator import Emulator, ManualClock
    clock = ManualClock()
    with Emulator(api_key="sk-test", clock=clock) as emu:
        ...  # point clients at emu.base_url (API under emu.base_url + "/api/v1")
        emu.advance(90)  # emulated seconds

Run standalone with ``python -m local.emulator --help``.
"""

from .clock import ManualClock, ScaledClock, fmt_cst
from .faults import Faults
from .render import SIZES
from .server import Emulator

__all__ = ["SIZES", "Emulator", "Faults", "ManualClock", "ScaledClock", "fmt_cst"]
