"""The seed's Node.js example, on the machine's node with the `form-data` package from npm."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LiveServer, make_clip

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the seed's Node example (the README's test command installs them)")
    folder = tmp_path_factory.mktemp("node")
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "form-data@4"], cwd=folder, check=True, timeout=180
    )
    return folder


def run_node(folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    (folder / "example.js").write_text(script)
    return subprocess.run(["node", "example.js"], cwd=folder, capture_output=True, text=True, timeout=120)


def test_seed_node_example_gets_a_400_that_says_how_to_fix_the_client(
    live_server: LiveServer, node_modules: Path
) -> None:
    """As printed, Node 18+'s fetch sends a form-data object as the text '[object FormData]'."""
    key = live_server.account()
    make_clip(node_modules / "input.mp4", seconds=1)
    script = f"""
const fs = require("fs");
const FormData = require("form-data");
(async () => {{
const form = new FormData();
form.append("file", fs.createReadStream("input.mp4"));
form.append("codec", "h264");
form.append("quality", "23");
const res = await fetch("{live_server.url}/api/v1/compress", {{
method: "POST",
headers: {{ Authorization: "Bearer {key}" }},
body: form,
}});
console.log(JSON.stringify({{ status: res.status, body: await res.json() }}));
}})();
"""
    run = run_node(node_modules, script)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["status"] == 400
    assert answer["body"]["code"] == "not_multipart"
    assert "fs.openAsBlob" in answer["body"]["error"]


def test_readme_node_example_compresses_a_video(live_server: LiveServer, node_modules: Path) -> None:
    key = live_server.account()
    make_clip(node_modules / "input.mp4", seconds=1)
    text = README.read_text()
    example = text.split("```js\n", 1)[1].split("```", 1)[0]
    example = example.replace("https://your-domain.com", live_server.url).replace("kvrt_your_key", key)
    example = example.replace("setTimeout(r, 3000)", "setTimeout(r, 200)")
    run = run_node(node_modules, example)
    assert run.returncode == 0, run.stderr
    assert "Done! Download from:" in run.stdout
    assert "Progress: 100%" in run.stdout
