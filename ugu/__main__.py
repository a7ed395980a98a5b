import sys

from ugu.cli import main

sys.exit(main())
