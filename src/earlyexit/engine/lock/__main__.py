"""``python -m earlyexit.engine.lock --write`` records the sources the engine patches; ``--check`` compares."""

from __future__ import annotations

import argparse
import sys

from earlyexit import engine
from earlyexit.engine.lock import LOCK_FILE, read_lock, write_lock
from earlyexit.engine.registry import PINS, declared_sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m earlyexit.engine.lock", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help=f"write {LOCK_FILE.name} from the installed moto")
    action.add_argument("--check", action="store_true", help="compare the lock with the installed moto")
    args = parser.parse_args(argv)
    if engine.installed():
        parser.error("the engine is installed in this process: its patches hide moto's sources")
    current = {key: digest for key, (digest, _) in declared_sources(engine.ENTRIES).items()}
    if args.write:
        write_lock(current, PINS)
        print(f"{LOCK_FILE}: {len(current)} sources")
        return 0
    recorded = read_lock()
    differ = sorted(key for key in current.keys() | recorded.keys() if current.get(key) != recorded.get(key))
    for key in differ:
        print(f"{key}: recorded {recorded.get(key, 'nothing')}, installed {current.get(key, 'nothing')}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
