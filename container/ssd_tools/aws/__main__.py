"""`python -m ssd_tools.aws`: what ./build_and_push.sh runs."""
import sys

from .cli import main

sys.exit(main())
