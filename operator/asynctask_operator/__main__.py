from asynctask_operator.cli import main

raise SystemExit(main())
