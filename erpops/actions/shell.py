"""shell.run: a command through a transport, its output streamed line by line.

The step's timeout (or Ctrl-C) kills the command's whole process tree: the
transport starts it in its own process group and the engine kills that group.
"""

from __future__ import annotations

import shlex
from collections import deque
from typing import Union

from erpops.actions.registry import Risk, StepContext, StepError, action
from erpops.runbook.events import StepOutput

TAIL_LINES = 20  # lines of output kept in the step's outputs


@action("shell.run", risk=Risk.WRITE)
def run(ctx: StepContext, command: Union[str, list[str]], target: str = "local", cwd: str | None = None,
        env: dict[str, str] = {}, secret_env: dict[str, str] = {},  # noqa: B006
        expect_exit: list[int] = [0], check: bool = True) -> dict:  # noqa: B006
    """Run a command and stream its output; fail unless its exit code is in `expect_exit`.

    `command` is a list of arguments, or a string run by `/bin/sh -c`. `target`
    names the transport (only `local` for now). With `check: false` any exit
    code succeeds and is returned in `exit_code`. `secret_env` maps variable
    names to secret references (`env:NAME`, `file:PATH`, ...) resolved only for
    the command; their values show as *** in every output and log.
    Outputs: `exit_code`, `stdout` (the last 20 lines).
    """
    argv = _argv(command)
    transport = ctx.transport(target)
    full_env = dict(env)
    for name, ref in secret_env.items():
        full_env[name] = ctx.secret(ref).reveal()
    process = transport.run(argv, env=full_env or None, cwd=cwd)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for line in process.lines():
        tail.append(line)
        ctx.emit(StepOutput(step=ctx.step_id, line=line))
    code = process.wait()
    ctx.check()  # a timeout/interrupt killed it: say so rather than "exit -15"
    if check and code not in expect_exit:
        last = f": {tail[-1]}" if tail else ""
        raise StepError(f"command exited with {code}{last}", kind="error",
                        where=shlex.join(argv)[:200])
    return {"exit_code": code, "stdout": "\n".join(tail)}


@run.simulate
def _(ctx: StepContext, command, target="local", cwd=None, env={}, secret_env={},  # noqa: B006
      expect_exit=[0], check=True) -> dict:  # noqa: B006
    ctx.plan(f"would run on {target}: {shlex.join(_argv(command))}")
    return {"exit_code": expect_exit[0] if expect_exit else 0, "stdout": ""}


def _argv(command: Union[str, list[str]]) -> list[str]:
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    if not command:
        raise StepError("empty command", kind="error")
    return [str(a) for a in command]
