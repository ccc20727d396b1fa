"""`python -m styx.app.cli ...` (the same as the `styx` console script)."""

from styx.app.cli import main

if __name__ == "__main__":
    main(prog_name="styx")
