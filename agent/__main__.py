"""`python -m agent ...`: run a node agent."""

import sys

from agent.main import main

sys.exit(main())
