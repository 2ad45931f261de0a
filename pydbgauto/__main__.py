import sys

from pydbgauto.cli import main

sys.exit(main())
