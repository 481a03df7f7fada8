import sys

from shoal.native import main

sys.exit(main())
