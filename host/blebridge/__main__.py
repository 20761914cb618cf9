"""`python -m blebridge` is the `blebridge` command."""
import sys

from .cli import main

sys.exit(main())
