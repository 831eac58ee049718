"""`python -m psd_engine ...`: the command-line interface."""
from .cli import main

raise SystemExit(main())
