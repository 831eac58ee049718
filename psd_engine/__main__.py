"""`python -m psd_engine ...`: the command-line interface."""
from .cli import exit_now, main

exit_now(main())
