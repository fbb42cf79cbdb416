"""`python -m simulator.cli`: the servesim command line."""
import sys

from simulator.cli.main import main

sys.exit(main())
