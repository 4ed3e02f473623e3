"""Fuzzed plan files (issue 14): ``validate`` exits 0 or 2, never with a traceback, and a
plan that validates runs offline and reports without a crash.

A seeded mutator edits the sample plan a few hundred times: values swapped for hostile
ones (huge, infinite or negative numbers, far dates, markup, control characters, aliases,
deep nesting), lines dropped, duplicated or swapped, characters flipped.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stratmap.flows.cli import main
from tests.conftest import EXAMPLES

SAMPLE = (EXAMPLES / "northwind" / "plan.yaml").read_text(encoding="utf-8")
PLANS = 300

HOSTILE = [
    "1e999", "-1e999", ".nan", "-0", "0", "-1", "9" * 60, "9" * 5000, "1.5", "99999999999d",
    "5200w", "5201w", "0d", "-3d", "9999-12-31", "0001-01-01", "1899-12-31", "9000-12-31",
    "2027-02-30", "2027-01-01T25:00", "Europe", "A" * 300, "Etc/GMT+12", "Pacific/Kiritimati",
    '"[link=https://evil.example]x[/link]"', '"[/docs]"', '"\\e[31mred\\e]8;;u\\e\\\\"',
    '"\\0nul"', '"\\ud800"', '"' + "x" * 2100 + '"', "&a [*a]", "*undefined", "[" * 80,
    "{" * 80, "~", "null", "true", "[]", "{}", "!!binary aGVsbG8=", "!!python/object:os.system",
    "'labels = a\\\\\") OR project = ZZZ OR (labels = \"b\\\\\"\"'", "'ORDER BY key'",
    "'('", "<<: *x", "|\n  block", "\"\\t\"", "'%s'",
]


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        n = rng.randrange(len(lines))
        line = lines[n]
        if choice < 0.55 and ":" in line:
            key, _, _value = line.partition(":")
            lines[n] = f"{key}: {rng.choice(HOSTILE)}"
        elif choice < 0.65:
            del lines[n]
        elif choice < 0.75:
            lines.insert(n, line)
        elif choice < 0.85:
            m = rng.randrange(len(lines))
            lines[n], lines[m] = lines[m], line
        elif line:
            i = rng.randrange(len(line))
            lines[n] = line[:i] + rng.choice(" :-[]{}&*!|>'\"#\t\\") + line[i + 1:]
    return "\n".join(lines) + "\n"


def _sample_dir(tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "northwind"
    shutil.copytree(EXAMPLES / "northwind", folder)
    return folder


def test_fuzzed_plans_validate_with_0_or_2_and_what_validates_runs(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = _sample_dir(tmp_path)
    db = f"sqlite:///{tmp_path / 'fuzz.db'}"
    assert main(["run", str(folder / "plan.yaml"), "--db", db, "-q",
                 "--as-of", "2027-03-01"]) == 0  # a store the valid plans are judged from
    rng = random.Random(14)
    valid = 0
    for number in range(PLANS):
        plan = folder / f"fuzz{number}.yaml"
        plan.write_text(_mutate(SAMPLE, rng), encoding="utf-8", errors="surrogatepass")
        code = main(["validate", str(plan)])
        out = capsys.readouterr()
        assert code in (0, 2), f"{plan.name}: exit {code}\n{out.out}{out.err}"
        assert "this is a bug" not in out.out + out.err, plan.read_text()
        if code == 0:
            valid += 1
            code = main(["run", str(plan), "--db", db, "--offline", "-q", "--as-of",
                         "2027-03-01"])
            out = capsys.readouterr()
            assert code == 0, f"{plan.name}: run exit {code}\n{out.out}{out.err}"
            if valid % 25 == 1:  # the Markdown and HTML reports of some of them
                for form in ("md", "html"):
                    code = main(["report", str(plan), "--db", db, "--as-of", "2027-03-01",
                                 "--format", form, "-o", str(tmp_path / f"r.{form}")])
                    out = capsys.readouterr()
                    assert code == 0, f"{plan.name}: report {form} exit {code}\n{out.out}{out.err}"
    print(f"{valid} of {PLANS} fuzzed plans validated")
    assert 20 < valid < PLANS  # the mutator reaches both sides
