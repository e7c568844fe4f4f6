"""Every command's --help opens in Chinese: the command's summary and every option and argument."""

from __future__ import annotations

import re
import subprocess
import sys

import typer

from sanigrid.scripts import _help_zh
from sanigrid.scripts.cli import app


def test_every_command_and_option_has_chinese_help():
    command = _help_zh.apply(typer.main.get_command(app))
    assert _help_zh.missing(command) == []
    names = list(command.commands)
    assert {"analyse", "import", "demo", "user", "coverage"} <= set(names)


def test_the_installed_command_prints_it():
    """`sanigrid demo --help` as a user runs it: Chinese panels, options and the --help line."""
    out = subprocess.run([sys.executable, "-m", "sanigrid.scripts.cli", "demo", "--help"], capture_output=True,
                         text=True, timeout=60, env={"COLUMNS": "200", "PATH": ""}).stdout
    assert "选项 Options" in out and "显示本帮助并退出" in out
    assert re.search(r"生成演示县.*/ Build the demo county", out)
    assert "项目文件夹" in out and "随机种子" in out
