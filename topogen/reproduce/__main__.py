"""``python -m topogen.reproduce``: run the numbered notebooks (see :mod:`topogen.reproduce.runner`)."""

import sys

from .runner import main

sys.exit(main())
