"""The README's receiver snippet is run here, against real signatures, so it cannot rot."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from konvrt.webhooks import sign

README = Path(__file__).parents[2] / "README.md"
BODY = b'{"event":"job.completed","job_id":"j_abc","status":"completed"}'


@pytest.fixture(scope="module")
def readme_verify() -> Callable[[bytes, str, str], bool]:
    section = README.read_text().split("## Webhooks", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md#webhooks", "exec"), namespace)
    function = namespace["verify_konvrt_signature"]
    assert callable(function)
    return function  # type: ignore[return-value]


def test_snippet_accepts_a_konvrt_signature(readme_verify: Callable[[bytes, str, str], bool]) -> None:
    assert readme_verify(BODY, sign(BODY, ["whsec_a"], int(time.time())), "whsec_a")


def test_snippet_accepts_either_secret_during_rotation(readme_verify: Callable[[bytes, str, str], bool]) -> None:
    header = sign(BODY, ["whsec_new", "whsec_old"], int(time.time()))
    assert readme_verify(BODY, header, "whsec_new") and readme_verify(BODY, header, "whsec_old")


def test_snippet_refuses_tampering_staleness_and_garbage(readme_verify: Callable[[bytes, str, str], bool]) -> None:
    now = int(time.time())
    header = sign(BODY, ["whsec_a"], now)
    assert not readme_verify(BODY.replace(b"j_abc", b"j_abd"), header, "whsec_a")
    assert not readme_verify(BODY, header, "whsec_b")
    assert not readme_verify(BODY, sign(BODY, ["whsec_a"], now - 301), "whsec_a")
    assert not readme_verify(BODY, header.replace(f"t={now}", f"t={now + 1}"), "whsec_a")
    assert not readme_verify(BODY, "", "whsec_a")
    assert not readme_verify(BODY, f"t=x,{header}", "whsec_a")
