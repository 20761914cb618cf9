"""blebridge boards in a labgrid lab (https://labgrid.readthedocs.io): install ``blebridge[labgrid]``.

A lab's boards stay on the hosts they are plugged into; each host runs ``labgrid-exporter``,
which serves every board's USB serial port through ser2net (a ``NetworkSerialPort`` in the
coordinator). A *place* names one board set (one or more boards, maybe a power switch); whoever
acquires it has it alone. What this package adds:

- :mod:`blebridge.labgrid.coordinator`: a small blocking client of the coordinator (acquire,
  release, the board ports of a place), used by the ``labgrid:PLACE`` port spec
  (:mod:`blebridge.transport.labgrid`) and the hil pytest plugin (hil/README.md);
- :mod:`blebridge.labgrid.driver`: ``BlebridgeDriver``, a labgrid driver for a board running
  blebridge's firmware (handshake, flash with PlatformIO when stale, power-cycle when the place
  has a power driver), registered with labgrid's ``target_factory`` when imported (an
  environment file loads it with ``imports: [blebridge.labgrid.driver]``).

Nothing here is imported by ``import blebridge``; labgrid itself is imported on first use.
"""
