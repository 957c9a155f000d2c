"""`python -m bench`: runs main() of every bench/bench_*.py module, in name order, and prints their figures.

`python -m bench controller` runs only the modules whose name contains "controller".
"""
import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    here = Path(__file__).resolve().parent
    if str(here.parent) not in sys.path:
        sys.path.insert(0, str(here.parent))
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"!! {name} failed: {exc!r}", flush=True)
        print(f"== {name} done in {time.monotonic() - started:.1f}s\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
