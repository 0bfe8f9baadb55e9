"""--set, --out, --quiet, --seed and --device are declared once (trainwell.cli.options) and mean
the same in every command: the same flags, short forms and one device help."""

from __future__ import annotations

from pathlib import Path

import typer

from trainwell.cli import app, options

CLI = Path(__file__).resolve().parents[2] / "src" / "trainwell" / "cli"
SHORT = {"--set": "-s", "--out": "-o", "--quiet": "-q"}


def _commands():
    root = typer.main.get_command(app)
    for name, cmd in root.commands.items():
        subs = getattr(cmd, "commands", None)
        if subs:
            yield from ((f"{name} {n}", c) for n, c in subs.items())
        else:
            yield name, cmd


def test_every_command_declares_the_shared_options_the_same_way():
    seen = set()
    for name, cmd in _commands():
        for p in cmd.params:
            flags = set(p.opts)
            for flag, short in SHORT.items():
                if flag in flags:
                    assert short in flags, f"{name} {flag} lacks {short}"
                    seen.add(flag)
            if "--device" in flags:
                assert p.help == options.DEVICE_HELP, name
                seen.add("--device")
    assert seen == {"--set", "--out", "--quiet", "--device"}


def test_no_command_spells_a_shared_flag_itself():
    for f in CLI.glob("*.py"):
        if f.name == "options.py":
            continue
        text = f.read_text(encoding="utf-8")
        for flag in ("--set", "--out", "--quiet", "--seed", "--device"):
            assert f'typer.Option("{flag}"' not in text and f'"{flag}", "-' not in text, \
                f"{f.name} declares {flag}; use trainwell.cli.options"
