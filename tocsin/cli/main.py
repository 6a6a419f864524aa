"""The `tocsin` command line. Every failure is one message on stderr and a non-zero exit, never a traceback.

One typer app: each module of this package contributes its commands (top-level ones, or a named group), and
`main` runs the app and turns what it raises into an exit code: 2 for bad usage and invalid input, 1 for a
refused or failed operation, 130 for Ctrl-C. Scripts rely on these codes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn

import typer
from pydantic import ValidationError
from temporalio.service import RPCError
from typer.main import get_command

from tocsin.channels.base import DeliveryError
from tocsin.cli import actions, commands, configuration, heartbeats, oncall, postmortems, report, runbooks, up, why
from tocsin.cli import maintenance as maintenance_cli
from tocsin.cli import simulate as simulate_cli
from tocsin.cli.common import CliError
from tocsin.client import ServerUnreachable
from tocsin.devserver import DevServerError
from tocsin.incident.client import IncidentError
from tocsin.policy.loader import PolicyError, problem_text
from tocsin.receiver.config import ReceiverError
from tocsin.state_dir import StateDirError

app = typer.Typer(
    help="Durable incident response on Temporal.",
    # `-h` as well as `--help`: scripts and habits use both.
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(up.app)
app.add_typer(actions.app)
app.add_typer(commands.app, name="incidents")
app.add_typer(configuration.policies, name="policies")
app.add_typer(configuration.channels)
app.add_typer(configuration.rules, name="rules")
app.add_typer(oncall.app, name="oncall")
app.add_typer(runbooks.app, name="runbook")
app.add_typer(postmortems.app, name="postmortem")
app.add_typer(why.app)
app.add_typer(heartbeats.app)
app.add_typer(maintenance_cli.app, name="maintenance")
app.add_typer(report.app)
app.add_typer(simulate_cli.app)


@app.callback()
def _logging(ctx: typer.Context) -> None:
    # The serving commands report what they do; a one-shot command prints its answer and only warnings besides.
    logging.basicConfig(
        level=logging.INFO if ctx.invoked_subcommand in up.SERVING else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if argv is None:
        # Run as the `tocsin` program: leave without interpreter finalization. temporalio's Rust threads can still
        # take the GIL while Python tears down, killing a command that already succeeded with SIGABRT ("Fatal
        # Python error: PyGILState_Release") or SIGSEGV, about one run in twelve (temporalio/sdk-python#300).
        _exit_now(code)
    return code


def _exit_now(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`tocsin incidents list | head`) has nothing more to hear.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _main(argv: list[str] | None) -> int:
    try:
        # Standalone mode: typer prints help and usage errors (exit 2) itself and ends every run in SystemExit;
        # our own exceptions pass through to the handlers below. The program name is fixed, whatever the
        # launcher, so usage lines and the shell-completion variable (_TOCSIN_COMPLETE) always say `tocsin`.
        get_command(app).main(args=argv, prog_name="tocsin", standalone_mode=True)
    except SystemExit as done:
        return _exit_code(done.code)
    except PolicyError as err:
        return _fail(str(err), 2)
    except (
        CliError,
        IncidentError,
        DevServerError,
        ServerUnreachable,
        ReceiverError,
        DeliveryError,
        StateDirError,
    ) as err:
        return _fail(str(err), 1)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"]))
        return _fail(f"{where}: {problem_text(first)}" if where else problem_text(first), 2)
    except RPCError as err:
        return _fail(f"Temporal refused: {err.message}", 1)
    except ValueError as err:  # settings such as a malformed port
        return _fail(str(err), 2)
    except KeyboardInterrupt:
        return 130
    raise AssertionError("typer's standalone mode ends every run in SystemExit")


def _fail(message: str, code: int) -> int:
    print(f"tocsin: {message}", file=sys.stderr)
    return code


def _exit_code(code: str | int | None) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)  # sys.exit("text"): the text is the message
    return 1


if __name__ == "__main__":
    sys.exit(main())
