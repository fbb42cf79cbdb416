"""The `servesim` command line: the composition root. Each subcommand lives in its own module
(`simulator/cli_<name>.py`, exposing `add_arguments(parser)` and `run(args) -> int`), imported
only when used so `servesim simulate` never loads the profiler or the report renderer.

Bad input (ServesimError / ValueError) exits with code 2 and one line; set SERVESIM_DEBUG=1
for the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from simulator.errors import ServesimError

COMMANDS = {
    "simulate": ("simulator.cli.simulate", "simulate a serving scenario and print vLLM-style metrics"),
    "cost": ("simulator.cli.cost", "Kinetics eFLOPs of one prompt (closed form, arXiv 2506.05333)"),
    "models": ("simulator.cli.catalog", "list the built-in models, devices, host CPUs and engines"),
    "tts": ("simulator.cli.tts", "test-time scaling sweep: model x samples x length budget -> cost per question"),
    "report": ("simulator.cli.report", "render saved results as one self-contained HTML report"),
    "compare": ("simulator.cli.compare", "what-if: a base scenario vs the cross product of --vary changes"),
    "plan": ("simulator.cli.plan", "capacity planning: cheapest configurations meeting SLOs at a target rate"),
    "roofline": ("simulator.cli.roofline", "ridge point, critical batch and memory-bound context of a model/device"),
    "profile": ("simulator.cli.profile", "measure per-kernel times on this machine (or import Vidur CSVs)"),
    "fit": ("simulator.cli.fit", "fit per-op predictors on profile tables and report their error"),
    "calibrate": ("simulator.cli.calibrate", "fit the device and engine to your own `vllm bench serve` results"),
    "validate": ("simulator.cli.validate", "check the simulator: published measurements (--published), your bench files (--bench) or a real run here"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage block only with --help), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already names one or there is
    none to show (None, False: a switch that is off, or a value decided at run time)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and default not in (None, False, argparse.SUPPRESS, [])
                and "(default" not in text):
            text += " (default: %(default)s)"
        return text


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's), or 'unknown' when run from a tree
    that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("servesim")
    except PackageNotFoundError:
        return "unknown"


NEGATIVE_WORDS = ("-inf", "-infinity", "-nan")


def _normalize_argv(argv: list[str]) -> list[str]:
    """`--rate -inf` -> `--rate=-inf`: argparse would read '-inf' as an option. An empty value
    (`--trace ''`, `--profile=`) is an error, not 'unset'."""
    out: list[str] = []
    for tok in argv:
        if (tok.strip() == "" and out and out[-1].startswith("--")) or (tok.startswith("--") and tok.endswith("=")):
            flag = out[-1] if tok.strip() == "" else tok[:-1]
            raise ServesimError(f"{flag} was given an empty value; give a value or leave the option out")
        if tok.lower() in NEGATIVE_WORDS and out and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="servesim", description="LLM serving simulator and profiler")
    parser.add_argument("--version", action="version", version=f"servesim {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _one_line_warnings(command: str) -> None:
    """Warnings (a trace's skipped rows, ...) print as one line naming the command, not Python's
    file:line and source excerpt."""
    import warnings

    def one_line(message, category, filename, lineno, line=None) -> str:
        return f"servesim {command}: warning: {message}\n"

    warnings.formatwarning = one_line  # formatting only: recorded warnings (tests) are untouched


def _stdout_broken() -> bool:
    """Whether stdout is a pipe whose reader has left: poll() reports an error on its write end (POSIX)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (tests) or no poll(): cannot tell
        return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail on the closed pipe again
    (Python docs, signal module: 'Note on SIGPIPE')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (tests)
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(_normalize_argv(raw))
    except SystemExit as exc:  # --help (0) or a one-line argparse error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    except ServesimError as exc:
        print(f"servesim {raw[0] if raw else ''}: error: {exc}".replace("  ", " "), file=sys.stderr)
        return 2
    if not args.command:
        parser.print_help()
        return 2
    _one_line_warnings(args.command)
    try:
        return importlib.import_module(args._module).run(args)
    except BrokenPipeError as exc:
        if not _stdout_broken():  # another pipe (a worker's): a real error
            print(f"servesim {args.command}: error: {exc}", file=sys.stderr)
            return 2
        _silence_stdout()  # the reader of stdout left (`| head`): not the run's error; exit as a shell would
        return 141
    except (ValueError, LookupError, OSError) as exc:
        if os.environ.get("SERVESIM_DEBUG"):
            raise
        print(f"servesim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("servesim: interrupted", file=sys.stderr)
        return 130

