from asynctask_operator.archive.cli import main

raise SystemExit(main())
