"""`python -m jitgrad ...`: the command line (jitgrad/cli.py)."""
import sys

from .cli import main

sys.exit(main())
