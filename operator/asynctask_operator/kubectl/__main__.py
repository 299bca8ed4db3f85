"""``python -m asynctask_operator.kubectl``: the plugin without its console script (a krew launcher runs this)."""

import sys

from asynctask_operator.kubectl import main

sys.exit(main())
