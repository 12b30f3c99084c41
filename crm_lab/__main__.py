import sys

from crm_lab.cli import main

sys.exit(main())
