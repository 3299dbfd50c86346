"""`python -m aptpipe` is the `aptpipe` command."""
import sys

from aptpipe.cli import main

sys.exit(main())
