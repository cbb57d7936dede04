"""``neuromorph bench speed|data|accuracy``: run the benchmark scripts of the repository's ``benchmarks/``.

The scripts live in the source tree, not in the wheel (they need the peer libraries and real data);
this command finds them next to the package (an editable / source install) or in ``--dir``. Each
script runs in its own process; extra arguments after the group are passed to every script (for
example ``neuromorph bench accuracy --json --args '--quick'``).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

# which scripts each group runs (globs inside benchmarks/)
GROUPS: dict[str, tuple[str, ...]] = {
    "speed": ("speed*.py", "kernels*.py", "delays.py", "rsm.py", "startup.py"),
    "data": ("data_*.py",),
    "accuracy": ("accuracy*.py", "feast.py"),
}


def benchmarks_dir(explicit: str | None = None) -> Path:
    """The ``benchmarks/`` folder: ``explicit`` or the one beside the package (source checkout)."""
    from neuromorph.errors import ConfigError

    path = Path(explicit) if explicit else Path(__file__).resolve().parents[1] / "benchmarks"
    if not path.is_dir():
        raise ConfigError(f"benchmark scripts not found at {str(path)!r}: they ship with the source repository; "
                          "run from a checkout or pass --dir", file=str(path), field="--dir")
    return path


def scripts_for(group: str, folder: Path) -> list[Path]:
    from neuromorph.errors import ConfigError, check_choice

    check_choice("group", group, sorted(GROUPS))  # ConfigError naming the valid groups
    found = sorted({p for pattern in GROUPS[group] for p in folder.glob(pattern) if p.is_file()})
    if not found:
        raise ConfigError(f"no {group} benchmark scripts in {str(folder)!r} (looked for {', '.join(GROUPS[group])})")
    return found


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="run the speed, data or accuracy benchmarks",
                              description="Run the scripts of benchmarks/ for one group; results are also recorded "
                              "in benchmarks/RESULTS.md by hand.")
    p.add_argument("group", help=f"one of {', '.join(GROUPS)}")
    p.add_argument("--dir", help="benchmarks folder (default: the repository's benchmarks/)")
    p.add_argument("--list", action="store_true", help="only list the scripts the group would run")
    p.add_argument("--json", action="store_true", help="print one JSON object: per script its exit status and output")
    p.add_argument("--args", dest="script_args", default="", help="arguments passed to every script, one string "
                   "(e.g. --args '--quick')")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    # errors go to neuromorph.cli.main, which reports them per the CLI error contract
    from neuromorph.errors import ConfigError, NeuromorphError

    scripts = scripts_for(args.group, benchmarks_dir(args.dir))
    try:
        extra = shlex.split(args.script_args)
    except ValueError as exc:  # unbalanced quotes
        raise ConfigError(f"--args {args.script_args!r}: {exc}", field="--args") from exc
    if args.list:
        print(json.dumps({"scripts": [str(s) for s in scripts]}) if args.json else "\n".join(map(str, scripts)))
        return 0
    results = []
    for script in scripts:
        t0 = time.perf_counter()
        cmd = [sys.executable, str(script), *extra]
        if args.json:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            output = proc.stdout.strip().splitlines()
            parsed = None
            if output:
                try:
                    parsed = json.loads(output[-1])
                except json.JSONDecodeError:
                    parsed = None
            results.append({"script": script.name, "returncode": proc.returncode, "seconds": round(time.perf_counter() - t0, 1),
                            "result": parsed, "stdout_tail": "\n".join(output[-20:]), "stderr_tail": proc.stderr[-2000:]})
        else:
            print(f"== {script.name}", flush=True)
            proc = subprocess.run(cmd)
            results.append({"script": script.name, "returncode": proc.returncode, "seconds": round(time.perf_counter() - t0, 1)})
    failed = [r for r in results if r["returncode"] != 0]
    if failed:  # reported by neuromorph.cli.main: the error object, with the per-script results beside it
        exc = NeuromorphError(f"{len(failed)} of {len(results)} {args.group} benchmark scripts failed: "
                              + ", ".join(f"{r['script']} (exit status {r['returncode']})" for r in failed))
        exc.context = {"group": args.group, "results": results}
        raise exc
    if args.json:
        print(json.dumps({"group": args.group, "results": results}))
    return 0
