import pytest

from rlthf_plugin.cli import COMMANDS, main
from rlthf_plugin.config import load_config
from rlthf_plugin.errors import ConfigError


def test_env_overrides_file_and_secrets_stay_hidden(workspace, monkeypatch):
    (workspace.root / "rlthf.toml").write_text('[selection]\nbudget = 0.05\n[label_studio]\nurl = "http://x"\n')
    monkeypatch.setenv("RLTHF_SELECTION_BUDGET", "0.03")
    monkeypatch.setenv("RLTHF_LABEL_STUDIO_API_KEY", "sekret")
    cfg = load_config(workspace.root)
    assert cfg.selection.budget == 0.03 and cfg.label_studio.url == "http://x"
    assert cfg.label_studio.api_key == "sekret"
    assert "sekret" not in repr(cfg) and "sekret" not in cfg.to_toml()


def test_secret_in_config_file_is_refused(workspace):
    (workspace.root / "rlthf.toml").write_text('[argilla]\napi_key = "k"\n')
    with pytest.raises(ConfigError, match="secrets belong"):
        load_config(workspace.root)


def test_unknown_key_names_it(workspace):
    (workspace.root / "rlthf.toml").write_text('[selection]\nbudgett = 1\n')
    with pytest.raises(ConfigError, match="budgett"):
        load_config(workspace.root)


def test_every_command_explains_itself(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
        sub = runner.invoke(main, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        assert len(sub.output.splitlines()) > 3


def test_not_a_workspace(tmp_path, runner):
    result = runner.invoke(main, ["-w", str(tmp_path), "status"])
    assert result.exit_code == 1 and "rlthf init" in result.output


def test_public_api_is_complete():
    import rlthf_plugin

    for name in rlthf_plugin.__all__:
        assert hasattr(rlthf_plugin, name)
