"""`python -m xai_client ...` is the `xai` command."""

from xai_client.cli import main

raise SystemExit(main())
