"""`python -m hub` is `imaging-hub`."""

from hub.cli import main

main()
