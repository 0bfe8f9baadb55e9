"""Users read trainwell's words: the source of every technique is the book, cited as such.

The package (code, help, recipe comments, report text), the README and the docs cite Géron,
*Hands-On Machine Learning with Scikit-Learn, Keras and TensorFlow*, chapter 11, or say "the
chapter"; "seed" only ever means a random seed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Internal names of the source documents, which must never reach a user.
FORBIDDEN = [re.compile(p, re.IGNORECASE) for p in (
    r"\bseeds?[\s_-]*0\d\d\b",                       # seed 001, seed-004, seeds 001 and 004
    r"\bthe seeds\b",                                # the seeds say / recommend / describe
    r"\bseeds'",                                     # the seeds' formula / experiments
    r"\bthe seed's\b",                               # the seed's formula
    r"\bseeds?' ?(formula|experiment|notebook|recipe|model|rule|advice|exercise)",
    r"\bseeds? (document|slide|text)s?\b",
    r"shared/seeds",
)]

MEANT_AS_RANDOM_SEEDS = [
    "trainwell study transfer --seeds 0,1,2",
    "best validation accuracy (mean ± std over 3 seeds)",
    "each variant is trained once per seed (default 0)",
    "runs/<variant>-seed0/ one run directory per variant and seed",
    "Seeds change the initialization and the batch order.",
    'seeds = [0]',
    "--seed 1",
    "the mean over the random seeds of each run",
    "manual_seed(2024)",
    "NPM_ORDER_SEED = 20170825",
]

INTERNAL = [
    "Reproduce the seeds' experiments over several seeds",
    "# Task A of the study (Géron ch. 11, seed 001)",
    "Seed 001 reports one run: 97.05% from scratch",
    "default 1: seed 001's 1e-3",
    "the learning rate of the later edition (seed 004)",
    "as set up in the seeds; prints",
    "the formula of the seeds",
    "the seed's θ + βm",
    "see /work/shared/seeds/001.txt",
]


def _user_visible_files() -> list[Path]:
    package = ROOT / "src" / "trainwell"
    files = [p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and p.suffix in {".py", ".toml", ".md", ".txt", ".html", ".json", ".css", ".js"}]
    files += [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return files


def _hits(text: str) -> list[str]:
    return [m.group(0) for rx in FORBIDDEN for m in rx.finditer(text)]


@pytest.mark.parametrize("text", MEANT_AS_RANDOM_SEEDS)
def test_random_seeds_are_not_mistaken_for_internal_words(text):
    assert _hits(text) == []


@pytest.mark.parametrize("text", INTERNAL)
def test_the_internal_words_are_caught(text):
    assert _hits(text)


def test_package_readme_and_docs_cite_the_book_not_internal_names():
    files = _user_visible_files()
    assert any(p.suffix == ".toml" for p in files) and ROOT / "README.md" in files
    found = []
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, start=1):
            found += [f"{path.relative_to(ROOT)}:{n}: {hit!r} in {line.strip()!r}"
                      for hit in _hits(line)]
        # phrases wrapped over two lines (of text or of comments)
        joined = " ".join(line.strip().lstrip("#").strip() for line in lines)
        if not found and _hits(joined):
            found.append(f"{path.relative_to(ROOT)}: {_hits(joined)} across a line break")
    assert not found, ("cite the book (Géron, Hands-On Machine Learning, ch. 11) or say "
                       "'the chapter'; 'seed' means a random seed only:\n" + "\n".join(found))


def _command_paths(command, prefix=()):
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*prefix, name))


def test_every_help_text_cites_the_book_not_internal_names():
    import typer
    from typer.testing import CliRunner

    from trainwell.cli import app

    paths = list(_command_paths(typer.main.get_command(app)))
    assert ("study", "transfer") in paths and ("fit",) in paths
    found = {}
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        if _hits(" ".join(result.output.split())):
            found[" ".join(path)] = _hits(" ".join(result.output.split()))
    assert not found, found
