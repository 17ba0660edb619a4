"""`python -m ghafgen` runs the command-line interface."""

from ghafgen.cli import main

main()
