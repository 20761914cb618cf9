"""Hardware-in-the-loop rig support for blebridge's tests (hil/README.md); plugin: hil.plugin."""
