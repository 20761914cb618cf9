"""``python -m blebridge.script``: ``blebridge run`` without the CLI."""
from .runner import _exit_now, main

_exit_now(main())
