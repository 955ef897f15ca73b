"""Settings that stay: the config file's [settings] and [keymap], user themes, written back only when asked."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from xentui.config import COLUMN_IDS, Settings, load_settings, save_settings
from xentui.ui.columns import COLUMNS


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_the_column_ids_are_the_tables():
    assert tuple(c.id for c in COLUMNS[1:]) == COLUMN_IDS


def test_settings_are_read_and_bad_ones_said_with_their_line(tmp_path):
    path = write(tmp_path, '''# mine
[settings]
theme = "xentui-light"
delay = 2
sort = "mem"
reverse = true
columns = ["state", "mem", "cpu_pct"]
name_width = 24
vbds = true
dom0_first = true
delay_s = 5
save_dir = "relative/dir"

[keymap]
destroy = "ctrl+x"
''')
    settings, problems = load_settings(path)
    assert (settings.theme, settings.delay, settings.sort, settings.reverse) == ("xentui-light", 2, "mem", True)
    assert settings.columns == ("state", "mem", "cpu_pct") and settings.name_width == 24
    assert settings.vbds and settings.dom0_first and settings.keymap == {"destroy": "ctrl+x"}
    assert settings.save_dir is None
    assert problems == [
        f"{path}, line 11: unknown setting 'delay_s' (known: audit_log, columns, delay, dom0_first, name_width, "
        "networks, reverse, save_dir, sort, theme, vbds, vcpus)",
        f"{path}, line 12: save_dir must be an absolute path (or start with ~), not 'relative/dir'",
    ]


@pytest.mark.parametrize(("text", "said"), [
    ('[settings]\ndelay = "fast"\n', "line 2: delay must be int or float, not 'fast'"),
    ("[settings]\ndelay = 0.1\n", "delay must be 0.5..3600 seconds"),
    ('[settings]\ncolumns = ["mem", "bogus"]\n', "columns: 'bogus' unknown"),
    ("[settings]\nreverse = 1\n", "reverse must be bool, not 1"),
    ('[settings]\nsort = "nope"\n', "sort: no column 'nope'"),
])
def test_a_bad_value_is_left_out_and_said(tmp_path, text, said):
    settings, problems = load_settings(write(tmp_path, text))
    assert settings == Settings() and len(problems) == 1 and said in problems[0]


def test_a_broken_file_gives_the_defaults_and_says_where(tmp_path):
    settings, problems = load_settings(write(tmp_path, "[settings]\ntheme = \n"))
    assert settings == Settings()
    assert problems and "line 2" in problems[0] and "the defaults are used" in problems[0]


def test_writing_back_replaces_only_the_settings_table(tmp_path):
    path = write(tmp_path, '''# my pool
[[hosts]]
name = "dom0a"   # the first
address = "root@dom0a"

[settings]
theme = "xentui-dark"
delay = 9

[keymap]
destroy = "ctrl+x"
''')
    save_settings(Settings(theme="xentui-light", delay=1.5, sort="mem", columns=("mem", "state"), vcpus=True), path)
    text = path.read_text()
    assert "# my pool" in text and 'name = "dom0a"   # the first' in text and "delay = 9" not in text
    document = tomllib.loads(text)
    assert document["settings"] == {"theme": "xentui-light", "delay": 1.5, "sort": "mem", "columns": ["mem", "state"],
                                    "vcpus": True}
    assert document["keymap"] == {"destroy": "ctrl+x"} and document["hosts"][0]["name"] == "dom0a"
    settings, problems = load_settings(path)
    assert problems == [] and settings.sort == "mem"


def test_writing_into_a_file_without_settings_adds_them(tmp_path):
    path = tmp_path / "new" / "config.toml"
    save_settings(Settings(dom0_first=True), path)
    assert tomllib.loads(path.read_text()) == {"settings": {"dom0_first": True}}


def test_the_command_line_wins_over_the_config_file(tmp_path):
    config = tmp_path / "xentui"
    config.mkdir()
    (config / "config.toml").write_text("[settings]\ndelay = 7\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = "from xentui.cli import build_parser, _settings_as_defaults; from xentui.config import load_settings\n" \
           "import sys; p = build_parser(); _settings_as_defaults(p, load_settings()[0])\n" \
           "print(p.parse_args(sys.argv[1:]).delay)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.strip() == "7.0"
    given = subprocess.run([sys.executable, "-c", code, "-d", "2"], capture_output=True, text=True, env=env)
    assert given.stdout.strip() == "2.0"
