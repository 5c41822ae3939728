"""The engine: walks a runbook's steps and reports everything as events.

Per step: ``when:``, the human gate (``confirm:``), rendering and validating
``with:``, the action (or its simulation in a tabletop exercise) under a
timeout that kills the step's processes, retries with exponential backoff on
the error kinds ``retries.on`` names, outputs, ``continue_on_error``. A
checkpoint is written after every step. On failure: the undo of completed
steps in reverse order (only those that have one), then ``on_failure``; the
run ends failed with the first error. On SIGINT/SIGTERM: the current step is
stopped (its process tree killed), the run is marked interrupted, the log sealed.
The engine knows nothing of what actions do.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any, Callable

from erpops.actions.registry import StepContext, StepError, StepInterrupted, error_from, get_action
from erpops.runbook import events as ev
from erpops.runbook.confirm import ConfirmPolicy
from erpops.runbook.plan import SimulatedOutputs, _PlaceholderSteps
from erpops.runbook.state import Checkpoint, now_iso
from erpops.runbook.tabletop import simulate
from erpops.runbook.templating import TemplateError, evaluate_condition, render_value
from erpops.runbook.watchdog import call_with_deadline


class Engine:
    def __init__(self, rb, *, checkpoint: Checkpoint, bus: ev.EventBus, policy: ConfirmPolicy,
                 env: Any = None, env_context: Any = None, run_dir=None, load_fragment: Callable | None = None,
                 injections: dict[str, str] | None = None, prefix: str = "", inputs: dict | None = None,
                 parent: "Engine | None" = None):
        self.rb = rb
        self.cp = checkpoint
        self.bus = bus
        self.policy = policy
        self.env = env
        self.env_context = env_context
        self.run_dir = run_dir
        self.load_fragment = load_fragment
        self.injections = dict(injections or {})
        self.prefix = prefix
        self.inputs = checkpoint.inputs if inputs is None else inputs
        self.parent = parent
        self.tabletop = checkpoint.tabletop
        self.outputs: dict[str, dict] = {}  # step id -> outputs, for steps.<id>.outputs
        self.fragments: dict[str, Engine] = {}  # fragment step id -> its engine, for undo
        self._interrupted = threading.Event() if parent is None else parent._interrupted
        self._current: StepContext | None = None
        self.exit_error: StepError | None = None

    # --- the run ------------------------------------------------------------

    def run(self) -> Checkpoint:
        """Walk the runbook; the checkpoint says how it ended. Installs signal handlers."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        start = time.monotonic()
        try:
            self.walk()
        except BaseException as exc:
            if self.cp.status == "running":  # a bug, not a step failure: still end the log properly
                self.cp.status, self.cp.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.cp.save(self.run_dir)
            self.bus.emit(ev.RunFinished(run_id=self.cp.run_id, status=self.cp.status, error=self.cp.error,
                                         failed_step=self.cp.failed_step, outputs=self.cp.outputs,
                                         duration=round(time.monotonic() - start, 3)))
        return self.cp

    def walk(self) -> None:
        """Main steps, then either the outputs or the failure path; sets cp.status/error."""
        model = self.rb.model
        first: tuple[str, StepError] | None = None
        for step in model.steps:
            sid = self.prefix + step.id
            state = self.cp.step(sid)
            if state.status in ("succeeded", "skipped") or (state.status == "failed" and step.continue_on_error):
                self.outputs[step.id] = state.outputs  # resumed: done before
                continue
            try:
                self.run_step(step, sid, phase="main")
            except StepInterrupted:
                state.status = "interrupted"
                self._set_end("interrupted", "interrupted by a signal", sid)
                self.cp.save(self.run_dir)
                if self.prefix:
                    raise
                return
            except StepError as exc:
                if step.continue_on_error:
                    continue
                first = (sid, exc)
                break
        if first is None and not self.prefix:
            try:
                self.cp.outputs = self._redacted(render_value(dict(model.outputs), self.context()))
                self._set_end("succeeded", None, None)
            except TemplateError as exc:
                first = ("outputs", StepError(exc.message, kind="template"))
        if first is not None:
            sid, exc = first
            self._set_end("failed", exc.message, sid, exc)
            self.rollback()
            self.run_on_failure()
            if self.prefix:
                raise exc
        self.cp.save(self.run_dir)

    def _set_end(self, status: str, error: str | None, step: str | None, exc: StepError | None = None) -> None:
        if self.prefix:  # a fragment reports to its parent step, not to the run
            return
        from erpops.secrets import REDACTOR

        self.cp.status, self.cp.error, self.cp.failed_step = status, REDACTOR.redact(error), step
        self.exit_error = exc

    # --- one step -----------------------------------------------------------

    def run_step(self, step, sid: str, *, phase: str) -> dict:
        state = self.cp.step(sid)
        context = self.context()
        try:
            go = evaluate_condition(step.when, context)
        except TemplateError as exc:
            return self._failed(step, sid, state, StepError(exc.message, kind="template"), 0.0, phase)
        if not go:
            state.status = "skipped"
            self.bus.emit(ev.StepSkipped(step=sid, reason=f"when: {step.when} is false"))
            self.cp.save(self.run_dir)
            return {}
        started = time.monotonic()
        state.started_at, state.status, state.error, state.kind = now_iso(), "running", None, None
        try:
            if step.confirm:
                self._gate(sid, render_value(step.confirm, context))
            outputs = self._attempts(step, sid, state, phase)
        except StepInterrupted:
            state.status, state.finished_at = "interrupted", now_iso()
            self.bus.emit(ev.StepFailed(step=sid, kind="interrupted", error="interrupted",
                                        duration=round(time.monotonic() - started, 3), phase=phase))
            self.cp.save(self.run_dir)
            raise
        except (StepError, TemplateError) as exc:
            err = exc if isinstance(exc, StepError) else StepError(exc.message, kind="template")
            return self._failed(step, sid, state, err, time.monotonic() - started, phase)
        state.status, state.outputs, state.finished_at = "succeeded", self._redacted(outputs), now_iso()
        self.outputs[step.id] = outputs
        self.bus.emit(ev.StepFinished(step=sid, outputs=outputs, duration=round(time.monotonic() - started, 3),
                                      phase=phase, simulated=self.tabletop))
        self.cp.save(self.run_dir)
        return outputs

    def _failed(self, step, sid, state, err: StepError, elapsed: float, phase: str) -> dict:
        state.status, state.error, state.kind, state.finished_at = "failed", err.message, err.kind, now_iso()
        self.bus.emit(ev.StepFailed(step=sid, kind=err.kind, error=err.message, duration=round(elapsed, 3),
                                    continued=step.continue_on_error, phase=phase))
        self.cp.save(self.run_dir)
        raise err

    def _gate(self, sid: str, message: str) -> None:
        approved, by, waited = self.policy.gate(sid, str(message))
        self.bus.emit(ev.Gate(step=sid, message=str(message), decision="approved" if approved else "declined",
                              by=by, waited=waited))
        if not approved:
            err = StepError(f"not approved: {message}", kind="refused")
            err.exit_code = 3
            raise err

    def _attempts(self, step, sid: str, state, phase: str) -> dict:
        """Render and validate with:, then run with retries (and, in a tabletop, the participants' decisions)."""
        attempt = 0
        while True:
            attempt += 1
            state.attempts = attempt
            try:
                return self._attempt(step, sid, attempt, phase)
            except StepInterrupted:
                raise
            except StepError as exc:
                if self._interrupted.is_set():
                    raise StepInterrupted() from None
                retries = step.retries
                if retries and attempt <= retries.count and exc.kind in retries.on:
                    delay = min(retries.backoff * 2 ** (attempt - 1), retries.max_backoff)
                    self.bus.emit(ev.StepRetried(step=sid, attempt=attempt, kind=exc.kind, error=exc.message,
                                                 delay=delay))
                    if not self.tabletop and self._interrupted.wait(delay):
                        raise StepInterrupted() from None
                    continue
                if self.tabletop and exc.kind != "template":
                    choice, by, waited = self.policy.failure_decision(sid, exc.message)
                    self.bus.emit(ev.Gate(step=sid, message=f"step {sid} failed: {exc.message}",
                                          decision=choice, by=by, waited=waited))
                    if choice == "retry":
                        continue
                    if choice == "skip":
                        return {"skipped_by_decision": True}
                raise

    def _attempt(self, step, sid: str, attempt: int, phase: str) -> dict:
        context = self.context()
        if step.is_fragment:
            values = render_value(dict(step.with_), context)
            self.bus.emit(ev.StepStarted(step=sid, uses=step.uses, risk="", attempt=attempt, with_=values, phase=phase))
            return self._run_fragment(step, sid, values)
        spec = get_action(step.uses)
        if spec is None:  # validation catches this; a resumed run with --replan may not
            raise StepError(f"unknown action {step.uses!r}", kind="template")
        values = render_value(dict(step.with_), context)
        self.bus.emit(ev.StepStarted(step=sid, uses=step.uses, risk=spec.risk.value, attempt=attempt,
                                     with_=values, phase=phase))
        kwargs = self._validated(spec, values)
        ctx = self._context_for(sid, step.timeout, attempt)
        if self.tabletop:
            return self._simulate(step, sid, spec, kwargs, values, ctx, attempt)
        return self._call(ctx, step.timeout, lambda: spec.func(ctx, **kwargs))

    def _validated(self, spec, values: dict) -> dict:
        from pydantic import ValidationError

        from erpops.runbook.validate import argument_errors

        try:
            return spec.validate(values)
        except ValidationError as exc:
            problems = argument_errors(spec, values) or [(str(e["loc"][0]) if e["loc"] else "", e["msg"])
                                                        for e in exc.errors(include_url=False)]
            text = "; ".join(f"with.{k}: {m}" for k, m in problems)
            if self.tabletop:
                return {}
            raise StepError(f"{spec.name}: {text}", kind="template") from None

    def _call(self, ctx: StepContext, timeout: float | None, fn: Callable[[], Any]) -> dict:
        self._current = ctx
        if self._interrupted.is_set():  # the signal came before this step had a context to cancel
            ctx.cancelled.set("interrupted")
        try:
            return _jsonable(call_with_deadline(ctx, timeout, fn))
        finally:
            self._current = None

    def _simulate(self, step, sid, spec, kwargs, values, ctx, attempt) -> dict:
        return simulate(step, sid, spec, kwargs, values, ctx, injections=self.injections, emit=self.bus.emit,
                        call=lambda fn: self._call(ctx, None, fn))

    def _run_fragment(self, step, sid: str, values: dict) -> dict:
        from erpops.runbook.inputs import resolve

        fragment = self.load_fragment(step.uses.split(":", 1)[1])
        inputs = resolve(fragment.model.inputs, values, runbook=fragment.name)
        child = Engine(fragment, checkpoint=self.cp, bus=self.bus, policy=self.policy, env=self.env,
                       env_context=self.env_context, run_dir=self.run_dir, load_fragment=self.load_fragment,
                       injections=self.injections, prefix=f"{sid}.", inputs=inputs, parent=self)
        self.fragments[step.id] = child
        child.walk()
        return child.fragment_outputs()

    def fragment_outputs(self) -> dict:
        return _jsonable(render_value(dict(self.rb.model.outputs), self.context()))

    # --- failure path -------------------------------------------------------

    def rollback(self) -> None:
        """Undo completed steps in reverse order; only those that define an undo."""
        for step in reversed(self.rb.model.steps):
            sid = self.prefix + step.id
            state = self.cp.steps.get(sid)
            if state is None or state.status != "succeeded" or step.undo is False:
                continue
            if step.is_fragment:
                child = self.fragments.get(step.id)
                if child:
                    child.rollback()
                continue
            self._undo(step, sid, state)

    def _undo(self, step, sid: str, state) -> None:
        spec = get_action(step.uses)
        override = step.undo or None
        if override is None and (spec is None or spec.undo_func is None):
            return
        uses = override.uses if override else step.uses
        self.bus.emit(ev.Undo(step=sid, uses=uses, status="started"))
        try:
            context = self.context()
            if override:
                target = get_action(override.uses)
                kwargs = target.validate(render_value(dict(override.with_), context))
                fn, fn_spec = target.func, target
            else:
                kwargs = spec.validate(render_value(dict(step.with_), context))
                kwargs["outputs"] = state.outputs
                fn, fn_spec = spec.undo_func, spec
            ctx = self._context_for(sid, step.timeout, 1)
            if self.tabletop:
                ctx.plan(f"would undo with {fn_spec.name}")
            else:
                self._call(ctx, step.timeout, lambda: fn(ctx, **kwargs))
        except StepInterrupted:
            self.bus.emit(ev.Undo(step=sid, uses=uses, status="interrupted"))
            raise
        except Exception as exc:  # noqa: BLE001 - a failed undo is reported, the others still run
            self.bus.emit(ev.Undo(step=sid, uses=uses, status="failed", error=error_from(exc).message))
            return
        state.status = "undone"
        self.cp.save(self.run_dir)
        self.bus.emit(ev.Undo(step=sid, uses=uses, status="succeeded"))

    def run_on_failure(self) -> None:
        for i, step in enumerate(self.rb.model.on_failure):
            sid = self.prefix + (step.id or f"on_failure_{i}")
            try:
                self.run_step(step, sid, phase="on_failure")
            except StepInterrupted:
                return
            except StepError:
                continue  # reported; the run already failed with the first error

    # --- context and signals ------------------------------------------------

    def context(self) -> dict:
        steps: dict = {k: {"outputs": v} for k, v in self.outputs.items()}
        if self.tabletop:  # simulations return few outputs: the rest reads as placeholders
            steps = _PlaceholderSteps({k: {"outputs": SimulatedOutputs(k, v)} for k, v in self.outputs.items()})
        run = {"id": self.cp.run_id, "started_at": self.cp.started_at, "operator": self.cp.operator,
               "tabletop": self.tabletop}
        return {"inputs": self.inputs, "env": self.env_context, "steps": steps, "run": run}

    def _context_for(self, sid: str, timeout: float | None, attempt: int) -> StepContext:
        return StepContext(step_id=sid, env=self.env, run_dir=self.run_dir, tabletop=self.tabletop,
                           deadline=(time.monotonic() + timeout) if timeout else None, attempt=attempt,
                           emit_fn=self.bus.emit, gate_fn=lambda message: self._gate_from_action(sid, message))

    def _gate_from_action(self, sid: str, message: str) -> bool:
        try:
            self._gate(sid, message)
            return True
        except StepError:
            return False

    def _on_signal(self, signum, frame) -> None:
        if self._interrupted.is_set():
            # a second Ctrl-C: an action that does not notice cancellation is stopped by force
            raise KeyboardInterrupt
        self._interrupted.set()
        current = self._current_context()
        if current is not None:
            current.cancelled.set("interrupted")
            current.kill_processes()

    def _current_context(self) -> StepContext | None:
        engine: Engine | None = self
        # the innermost running fragment holds the live step
        for child in self.fragments.values():
            if child._current_context() is not None:
                return child._current_context()
        return engine._current

    @staticmethod
    def _redacted(value: Any) -> Any:
        from erpops.secrets import REDACTOR

        return REDACTOR.redact(_jsonable(value))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
