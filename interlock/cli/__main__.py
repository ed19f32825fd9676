"""``python -m interlock.cli``: the ``interlock`` command."""

from interlock.cli.main import main

raise SystemExit(main())
