from pathlib import Path

from konvrt.config import Settings

DOCS = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    missing = [name for name in Settings.model_fields if f"`KONVRT_{name.upper()}`" not in text]
    assert missing == []
