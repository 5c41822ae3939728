"""http.check: probe an HTTP endpoint for an expected status and body."""

from __future__ import annotations

import time
from typing import Union

from erpops.actions.registry import Risk, StepContext, StepError, action
from erpops.units import Duration


@action("http.check", risk=Risk.READ)
def check(ctx: StepContext, url: str, method: str = "GET", expect_status: Union[int, list[int]] = 200,
          expect_body: str | None = None, headers: dict[str, str] = {},  # noqa: B006
          request_timeout: Duration = Duration("10s"), attempts: int = 1,
          interval: Duration = Duration("1s")) -> dict:
    """Request `url` and fail unless the status is `expect_status` and the body contains `expect_body`.

    Tries up to `attempts` times, `interval` apart (a service coming up);
    connection errors are kind "transient", unmet expectations kind "error".
    Outputs: `status`, `body` (first 2000 characters), `elapsed` seconds.
    """
    wanted = [expect_status] if isinstance(expect_status, int) else list(expect_status)
    last: StepError | None = None
    for attempt in range(1, max(1, attempts) + 1):
        ctx.check()
        try:
            return _once(ctx, url, method, wanted, expect_body, headers, float(request_timeout))
        except StepError as exc:
            last = exc
            if attempt < attempts:
                ctx.sleep(float(interval))
    assert last is not None
    raise last


def _once(ctx: StepContext, url: str, method: str, wanted: list[int], expect_body: str | None,
          headers: dict[str, str], timeout: float) -> dict:
    import urllib.error
    import urllib.request

    remaining = ctx.remaining()
    if remaining is not None:
        timeout = max(0.1, min(timeout, remaining))
    request = urllib.request.Request(url, method=method, headers=headers)
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator-given URL
            status, body = response.status, response.read(1_000_000)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(1_000_000) if exc.fp else b""
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StepError(f"{method} {url}: {reason}", kind="transient") from None
    elapsed = round(time.monotonic() - start, 3)
    text = body.decode("utf-8", "replace")
    if status not in wanted:
        raise StepError(f"{method} {url}: status {status}, expected {' or '.join(map(str, wanted))}", kind="error")
    if expect_body is not None and expect_body not in text:
        raise StepError(f"{method} {url}: body does not contain {expect_body!r}", kind="error")
    return {"status": status, "body": text[:2000], "elapsed": elapsed}


@check.simulate
def _(ctx: StepContext, url: str, method: str = "GET", expect_status=200, expect_body=None, headers={},  # noqa: B006
      request_timeout=None, attempts=1, interval=None) -> dict:
    ctx.plan(f"would {method} {url} and expect status {expect_status}")
    first = expect_status if isinstance(expect_status, int) else list(expect_status)[0]
    return {"status": first, "body": "", "elapsed": 0.0}
