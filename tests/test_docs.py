"""Docs that tests keep true: every setting and every CLI command is documented."""
from pathlib import Path

import click

from fieldapp.cli import main
from fieldapp.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names += _commands(command, f"{prefix}{name} ")
        else:
            names.append(f"{prefix}{name}")
    return names


def test_every_setting_is_in_configuration_md():
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in text]
    assert missing == []


def test_configuration_md_names_no_setting_that_does_not_exist():
    import re
    text = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`(FIELDAPP_[A-Z0-9_]+)`", text)) - {"FIELDAPP_TEST_POSTGRES_URL"}
    assert documented == {s.name for s in SETTINGS}


def test_every_fieldapp_command_is_documented():
    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "api.md").read_text()
    ours = [c for c in _commands(main) if c.split()[0] not in ("run", "routes", "shell")]
    assert ours, "the CLI lost its commands"
    missing = [c for c in ours if f"fieldapp {c}" not in text]
    assert missing == []


def test_the_docs_the_brief_asks_for_exist():
    for name in ("architecture.md", "data-model.md", "deploy.md", "api.md", "configuration.md",
                 "roster-format.md"):
        assert (ROOT / "docs" / name).stat().st_size > 200, name
