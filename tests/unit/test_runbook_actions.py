"""The shipped actions against real processes and a real HTTP server."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from erpops.errors import ErpopsError
from erpops.actions.registry import StepContext, StepError, load_actions
from erpops.runbook.events import StepOutput
from erpops.transport.local import LocalTransport


@pytest.fixture
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            code = 503 if self.path == "/down" else 200
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"status: green")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def call(name, **kwargs):
    spec = load_actions()[name]
    events: list = []
    ctx = StepContext(step_id="s", emit_fn=events.append)
    return spec.func(ctx, **spec.validate(kwargs)), events


def test_http_check_expectations(server):
    out, _ = call("http.check", url=f"{server}/health", expect_body="green")
    assert out["status"] == 200 and "green" in out["body"]
    with pytest.raises(StepError, match="status 503, expected 200") as info:
        call("http.check", url=f"{server}/down")
    assert info.value.kind == "error"
    assert call("http.check", url=f"{server}/down", expect_status=[200, 503])[0]["status"] == 503
    with pytest.raises(StepError, match="does not contain 'red'"):
        call("http.check", url=f"{server}/health", expect_body="red")


def test_http_check_connection_refused_is_transient_and_retried(server):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    start = time.monotonic()
    with pytest.raises(StepError) as info:
        call("http.check", url=f"http://127.0.0.1:{port}/", attempts=3, interval="50ms")
    assert info.value.kind == "transient" and time.monotonic() - start >= 0.1


def test_shell_run_streams_and_checks_exit_codes(tmp_path):
    out, events = call("shell.run", command=["sh", "-c", "echo one; echo two >&2; exit 4"], expect_exit=[4])
    assert out == {"exit_code": 4, "stdout": "one\ntwo"}
    assert [e.line for e in events if isinstance(e, StepOutput)] == ["one", "two"]
    with pytest.raises(StepError, match="exited with 4: two"):
        call("shell.run", command="echo one; echo two; exit 4")
    assert call("shell.run", command="exit 9", check=False)[0]["exit_code"] == 9
    with pytest.raises(ErpopsError, match="command not found"):
        call("shell.run", command=["/nonexistent/tool"])


def test_local_transport_files(tmp_path):
    t = LocalTransport()
    tmp_path = tmp_path / "files"
    tmp_path.mkdir()
    with t.open_write(str(tmp_path / "f")) as fh:
        fh.write(b"data")
    assert t.listdir(str(tmp_path)) == ["f"] and t.stat(str(tmp_path / "f")).size == 4
    with t.open_read(str(tmp_path / "f")) as fh:
        assert fh.read() == b"data"
    t.remove(str(tmp_path / "f"))
    assert t.listdir(str(tmp_path)) == []


def test_control_fail_and_wait():
    with pytest.raises(StepError) as info:
        call("control.fail", message="nope", kind="transient")
    assert info.value.kind == "transient"
    out, events = call("control.wait", duration="600ms")
    assert out["waited"] >= 0.6 and any(e.type == "step_progress" for e in events)
