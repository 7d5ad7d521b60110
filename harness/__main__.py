"""``python -m harness``: the command line (:mod:`harness.cli`)."""
from harness.cli import main

raise SystemExit(main())
