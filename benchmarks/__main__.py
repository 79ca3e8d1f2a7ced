"""Run benchmarks: `python -m benchmarks` runs every one with its defaults;
`python -m benchmarks NAME [ARGS ...]` runs bench_NAME with its own arguments (see its --help)."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if argv:
        name = argv[0] if argv[0].startswith("bench_") else f"bench_{argv[0]}"
        if name not in names:
            sys.exit(f"benchmarks: no module {name} (have: {', '.join(names)})")
        runs = [(name, argv[1:])]
    else:
        runs = [(name, []) for name in names]
    for name, args in runs:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main(args)


if __name__ == "__main__":
    main(sys.argv[1:])
