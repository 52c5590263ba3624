import pytest
from django.core.management import CommandError, call_command

from core.management.commands import erd


def test_committed_er_diagram_matches_the_models(capsys):
    call_command("erd", "--check")
    assert "up to date" in capsys.readouterr().out


def test_er_diagram_check_fails_when_stale(tmp_path, monkeypatch):
    stale = tmp_path / "data-model.md"
    stale.write_text(f"# Data model\n{erd.START}\n```mermaid\nerDiagram\n```\n{erd.END}\n")
    monkeypatch.setattr(erd, "DOC", stale)
    with pytest.raises(CommandError, match="stale"):
        call_command("erd", "--check")
    call_command("erd")
    assert "accounts_Account {" in stale.read_text()
    call_command("erd", "--check")
