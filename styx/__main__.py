"""`python -m styx ...`: the `styx` command-line tool (styx.app.cli)."""

from styx.app.cli import main

if __name__ == "__main__":
    main(prog_name="styx")
