"""`python -m transpile FILE.py`: the same command line as `transpile-ad` (see cli.py)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
