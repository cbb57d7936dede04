"""The CLI error contract, for every subcommand: one JSON error object on stdout with --json, one line on
stderr, exit status 2 for a wrong command line or configuration and 1 for a failure on the input.
Also: `neuromorph --version/--help` load no torch, and the listed help lines match the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neuromorph.cli import COMMANDS, build_parser, main

BIN = Path(sys.executable).parent
ERROR_KEYS = {"type", "message", "command", "exit_code", "file", "field", "layer"}


def neuromorph(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script the way a user does (the venv's bin first on PATH)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    exe = BIN / "neuromorph"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "neuromorph"]
    return subprocess.run([*cmd, *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def check_error(stdout: str, stderr: str, rc: int, type_: str, exit_code: int, command: str | None) -> dict:
    obj = json.loads(stdout)  # exactly one JSON document on stdout
    err = obj["error"]
    assert set(err) >= ERROR_KEYS, err
    assert (err["type"], err["exit_code"], err["command"], rc) == (type_, exit_code, command, exit_code), (err, stderr)
    assert isinstance(err["message"], str) and err["message"]
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith(f"neuromorph{' ' + command if command else ''}") and f"error: {type_}: " in lines[-1]
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    (d / "garbage.pt").write_bytes(b"not a torch file")
    (d / "t.bin").write_bytes(bytes(7))  # an N-MNIST/ATIS record is 5 bytes: 2 bytes of a cut record
    (d / "bench").mkdir()
    return {"dir": d, "garbage": d / "garbage.pt", "bin": d / "t.bin"}


# one subprocess per subcommand: (argv, error type, exit status, key -> expected value of the error object)
CASES = {
    "train": (["train", "mnist-typo"], "ConfigError", 2, {"field": "recipe"}),
    "eval": (["eval", "{dir}/missing.pt"], "CheckpointError", 1, {"file": "{dir}/missing.pt"}),
    "plot": (["plot", "{garbage}"], "CheckpointError", 1, {"file": "{garbage}"}),
    "energy": (["energy", "{garbage}", "--limit", "many"], "UsageError", 2, {"field": "--limit"}),
    "export": (["export", "{garbage}", "--to", "nir"], "CheckpointError", 1, {"file": "{garbage}"}),
    "data": (["data", "read", "{bin}"], "DataFormatError", 1, {"file": "{bin}", "offset": 5}),
    "bench": (["bench", "gpu", "--dir", "{dir}/bench"], "ConfigError", 2, {"field": "group"}),
}


def test_every_command_has_a_case():
    assert set(CASES) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(CASES))
def test_error_contract_subprocess(command, files):
    argv, type_, code, expect = CASES[command]
    fmt = {k: str(v) for k, v in files.items()}
    proc = neuromorph(*[a.format(**fmt) for a in argv], "--json")
    err = check_error(proc.stdout, proc.stderr, proc.returncode, type_, code, command)
    for key, value in expect.items():
        assert err[key] == (value.format(**fmt) if isinstance(value, str) else value), err


def test_unknown_command_and_no_command():
    proc = neuromorph("bogus", "--json")
    err = check_error(proc.stdout, proc.stderr, proc.returncode, "UsageError", 2, None)
    assert err["field"] == "COMMAND" and "'export'" in err["message"]
    proc = neuromorph()
    assert proc.returncode == 2 and proc.stdout == "" and "COMMAND" in proc.stderr


# more cases per command, in-process (same main(), no interpreter start-up each)
IN_PROCESS = [
    (["train", "digits-dvs", "--set", "lr=-1", "--out", "{dir}/o"], "ConfigError", 2, {}),
    (["train", "--epochs", "two"], "UsageError", 2, {"field": "--epochs"}),
    (["train", "nmnist", "--data-root", "{dir}/nope", "--out", "{dir}/o"], "DatasetError", 1, {}),
    (["eval"], "UsageError", 2, {"field": "checkpoint"}),
    (["plot", "{dir}/missing"], "CheckpointError", 1, {}),
    (["energy"], "UsageError", 2, {"field": "checkpoint"}),
    (["energy", "{garbage}"], "CheckpointError", 1, {"file": "{garbage}"}),
    (["export", "{garbage}", "--to", "onnx"], "UsageError", 2, {"field": "--to"}),
    (["data"], "UsageError", 2, {}),
    (["data", "read", "--format", "nope", "{bin}"], "UsageError", 2, {"field": "--format"}),
    (["data", "read", "--address-bytes", "2", "{bin}"], "UsageError", 2, {"field": "--address-bytes"}),
    (["bench", "speed", "--dir", "{dir}/nope"], "ConfigError", 2, {"field": "--dir"}),
]


@pytest.mark.parametrize("argv,type_,code,expect", IN_PROCESS, ids=[" ".join(c[0][:2]) for c in IN_PROCESS])
def test_error_contract_in_process(argv, type_, code, expect, files, capsys):
    fmt = {k: str(v) for k, v in files.items()}
    argv = [a.format(**fmt) for a in argv]
    rc = main([*argv, "--json"]) if argv != ["data"] else main(["data"])
    out, err_text = capsys.readouterr()
    if argv == ["data"]:  # no --json possible before the subcommand: human form only
        assert rc == 2 and out == "" and "UsageError" in err_text
        return
    err = check_error(out, err_text, rc, type_, code, argv[0])
    for key, value in expect.items():
        assert err[key] == value.format(**fmt), err


def test_human_form_is_one_line_on_stderr(files, capsys):
    assert main(["eval", str(files["dir"] / "missing.pt")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"neuromorph eval: error: CheckpointError: checkpoint "
                                f"{str(files['dir'] / 'missing.pt')!r} does not exist"]


def test_context_beside_the_error_and_os_errors(tmp_path, capsys):
    """A command may add context beside "error": export --check adds the failed constraint table."""
    import torch

    import neuromorph.nn as nnm
    from neuromorph.train import checkpoint as ck

    def soft_net():
        return torch.nn.Sequential(nnm.Linear(6, 4), nnm.LIF(tau=2.0, reset="soft"))

    ck.register_builder("tests.cli_contract.soft_net", soft_net)
    path = ck.save_checkpoint(tmp_path / "soft.pt", soft_net(), "tests.cli_contract.soft_net", {}, info={"input_shape": [6]})
    rc = main(["export", str(path), "--to", "lava", "--check", "loihi", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert rc == 1 and obj["error"]["type"] == "HardwareConstraintError" and obj["error"]["layer"] == "1"
    assert obj["written"] is False and not obj["check"]["ok"]
    # a file-system error keeps its Python type; the path goes to "file", not twice into the message
    missing = tmp_path / "none.pt"
    assert main(["energy", str(path), "--inputs", str(missing), "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert (err["type"], err["file"], err["command"]) == ("FileNotFoundError", str(missing), "energy")


def _imports_after(code: str) -> set[str]:
    probe = ("import sys\nfrom neuromorph.cli import main\ntry:\n    " + code +
             "\nexcept SystemExit:\n    pass\nprint(' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_version_and_help_load_no_torch(argv):
    """`neuromorph --version/--help` used to import every subpackage (torch, numba: ~3 s)."""
    loaded = _imports_after(f"main({argv!r})")
    assert not {"torch", "numpy", "numba", "nir", "h5py"} & loaded
    assert not any(m.startswith(("neuromorph.train", "neuromorph.energy", "neuromorph.export", "neuromorph.data"))
                   for m in loaded)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_subcommand_help_loads_no_torch(command):
    """Each command module is imported only when dispatched, and its package loads submodules lazily."""
    loaded = _imports_after(f"main([{command!r}, '--help'])")
    assert "torch" not in loaded and "numba" not in loaded
    others = {m for c, (m, _) in COMMANDS.items() if m != COMMANDS[command][0]}
    assert not others & loaded


def test_data_read_loads_no_torch(files):
    loaded = _imports_after(f"main(['data', 'read', '--json', {str(files['bin'])!r}])")
    assert "torch" not in loaded and "neuromorph.data.readers.detect" in loaded


@pytest.mark.parametrize("package", ["neuromorph.train", "neuromorph.energy", "neuromorph.export", "neuromorph.data"])
def test_lazy_packages_export_every_listed_name(package):
    import importlib

    module = importlib.import_module(package)
    assert module.__all__ and set(dir(module)) >= set(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None
    assert importlib.import_module(f"{package}.cli") is getattr(module, "cli")  # submodules as attributes
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        getattr(module, "no_such_name")


def test_help_lists_the_registered_help_lines():
    """COMMANDS (what --help lists without importing) matches what each module registers."""
    parser = build_parser(None)  # every module registered in full
    sub = next(a for a in parser._actions if a.dest == "command")
    registered = {a.dest: a.help for a in sub._choices_actions}
    assert registered == {name: help_line for name, (_, help_line) in COMMANDS.items()}
    text = neuromorph("--help").stdout
    assert all(name in text for name in COMMANDS) and "exit status" in text
