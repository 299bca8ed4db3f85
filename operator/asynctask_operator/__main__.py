from asynctask_operator.programs import operator

raise SystemExit(operator())
