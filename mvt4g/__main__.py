"""`python -m mvt4g` (also what `torchrun -m mvt4g` runs)."""

import sys

from mvt4g.cli.main import main

sys.exit(main())
