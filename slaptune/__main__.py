"""``python -m slaptune`` (also under ``torchrun ... -m slaptune train``)."""

import sys

from .cli.main import main

sys.exit(main())
