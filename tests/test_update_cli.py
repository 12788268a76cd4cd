"""`llmxmr update` and `llmxmr show` on the command line, over the scripted loopback server: the update
writes the new survey.md and CHANGELOG.md, bad requests are one-line errors (exit 2) that change nothing,
and an earlier version is written out again with `show --version`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmxmr import cli
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]

pytestmark = pytest.mark.usefixtures("offline_env")


def more_jsonl(path: Path) -> Path:
    """Two new papers and one that is already in the run."""
    first = json.loads(CORPUS.read_text().splitlines()[0])
    new = [{"title": f"New study {i} of speculative decoding", "url": f"https://example.org/new/{i}",
            "txt": f"New study {i} measures speculative decoding latency and batching cost on many prompts. " * 6}
           for i in range(2)]
    path.write_text(json.dumps({"title": first["title"], "papers": new + first["papers"][:1]}) + "\n")
    return path


def test_update_writes_the_new_version_and_changelog_and_show_reads_the_old_one(tmp_path: Path, capsys) -> None:
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    with scripted_server() as server:
        model = ["--model", "openai:scripted", "--base-url", server.base_url]
        assert cli.main(["run", str(CORPUS), "-o", str(out), "--db", str(db), "--thread", "t1", *model, *TINY]) == 0
        first = (out / "survey.md").read_text()
        first_refs = json.loads((out / "survey.json").read_text())["references"]
        assert not (out / "CHANGELOG.md").exists()
        capsys.readouterr()

        code = cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--add", str(more_jsonl(tmp_path / "more.jsonl")),
                         "--refine", "never"])
        assert code == 0
        err = capsys.readouterr().err
        assert "already in the run (same id)" in err and "from version 1 to 2: 2 document(s) added" in err
        changelog = (out / "CHANGELOG.md").read_text()
        assert changelog.startswith("# Changelog\n\n## Version 2\n")
        assert changelog.count("- Documents added: ") == 2 and changelog.count("- Documents ignored: ") == 1
        assert "- Section rewritten: " in changelog and "- Sections kept verbatim: " in changelog
        report = json.loads((out / "survey.json").read_text())
        assert len(report["papers"]["included"]) == 6
        assert (out / "survey.md").read_text() != first

        requests = len(server.chat_requests)
        known = first_refs[0]["paper_id"]
        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--remove", "nope"]) == 2
        err = capsys.readouterr().err
        assert "cannot remove nope" in err and known in err and "Traceback" not in err
        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--remove", known, "--set", "mode=reference"]) == 2
        assert "was made with mode='default'" in capsys.readouterr().err
        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out)]) == 2
        assert "nothing to update" in capsys.readouterr().err
        assert cli.main(["update", "t9", "--db", str(db), "-o", str(out), "--remove", known]) == 2
        assert "no run with thread id t9" in capsys.readouterr().err
        assert len(server.chat_requests) == requests  # refused before any model call

        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--remove", known, "--refine", "never"]) == 0
        changelog = (out / "CHANGELOG.md").read_text()
        assert changelog.index("## Version 3") < changelog.index("## Version 2")
        assert f"- Reference removed: `{known}`" in changelog and "(document removed)" in changelog
        assert known not in (out / "survey.md").read_text()

    assert cli.main(["show", "t1", "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    assert "first run" in listing and "+2 -0 documents" in listing and "+0 -1 documents" in listing
    assert cli.main(["show", "t1", "--db", str(db), "--version", "1", "-o", str(tmp_path / "v1")]) == 0
    assert (tmp_path / "v1" / "survey.md").read_text() == first
    assert not (tmp_path / "v1" / "CHANGELOG.md").exists()
    capsys.readouterr()
    assert cli.main(["show", "t1", "--db", str(db), "--version", "1"]) == 0
    assert capsys.readouterr().out == first
    assert cli.main(["show", "t1", "--db", str(db), "--version", "7"]) == 2
    assert "has no version 7; its versions: 1, 2, 3" in capsys.readouterr().err


def test_an_update_stopped_midway_is_finished_by_llmxmr_resume(tmp_path: Path, capsys) -> None:
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    with scripted_server() as server:
        model = ["--model", "openai:scripted", "--base-url", server.base_url]
        assert cli.main(["run", str(CORPUS), "-o", str(out), "--db", str(db), "--thread", "t1", *model, *TINY]) == 0
        more = str(more_jsonl(tmp_path / "more.jsonl"))
        started = len(server.chat_requests)
        # A budget of 3 calls for this version: the update stops after reading the new documents.
        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--add", more, "--refine", "never",
                         "--set", "max_calls=3"]) == 1
        err = capsys.readouterr().err
        assert "budget exhausted" in err and f"llmxmr resume t1 --db {db}" in err
        assert not (out / "CHANGELOG.md").exists()
        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--add", more]) == 2
        assert "has an update that did not finish: finish it first with `llmxmr resume t1" in capsys.readouterr().err
        paid = len(server.chat_requests)
        assert paid - started == 3
        assert cli.main(["resume", "t1", "--db", str(db), "-o", str(out), "--set", "max_calls=1000", "-q"]) == 0
        body = lambda r: json.dumps(r["body"]["messages"], sort_keys=True)  # noqa: E731
        before = {body(r) for r in server.chat_requests[started:paid]}
        after = {body(r) for r in server.chat_requests[paid:]}
    assert before and after and not before & after  # nothing answered before the stop is paid again
    assert "## Version 2" in (out / "CHANGELOG.md").read_text()
    assert len(json.loads((out / "survey.json").read_text())["papers"]["included"]) == 6
    assert cli.main(["show", "t1", "--db", str(db)]) == 0
    assert capsys.readouterr().out.count("version ") == 2


def test_show_version_returns_that_versions_article_after_two_updates_rewrite_the_same_section(tmp_path: Path,
                                                                                             capsys) -> None:
    """The store keeps one text per section (a rewrite replaces it); each version's article, report and
    changelog are in its own checkpoint, so `show --version K` gives exactly version K's files."""
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    new = json.loads(more_jsonl(tmp_path / "more.jsonl").read_text())
    saved: dict[int, dict[str, str]] = {}  # file name -> text, of each version as the update wrote it

    def keep(version: int) -> None:
        saved[version] = {name: (out / name).read_text() for name in ("survey.md", "survey.json")}

    with scripted_server() as server:
        model = ["--model", "openai:scripted", "--base-url", server.base_url]
        assert cli.main(["run", str(CORPUS), "-o", str(out), "--db", str(db), "--thread", "t1", *model, *TINY]) == 0
        keep(1)
        one = tmp_path / "one.jsonl"
        one.write_text(json.dumps({"title": new["title"], "papers": new["papers"][:1]}) + "\n")
        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--add", str(one), "--refine", "never", "-q"]) == 0
        keep(2)
        added = json.loads(saved[2]["survey.json"])["papers"]["included"][-1]["paper_id"]
        # ... then taken back out for another one: the sections that took it in are written again.
        two = tmp_path / "two.jsonl"
        two.write_text(json.dumps({"title": new["title"], "papers": new["papers"][1:2]}) + "\n")
        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--add", str(two), "--remove", added,
                         "--refine", "never", "-q"]) == 0
        keep(3)
    rewritten = {}
    changelog = (out / "CHANGELOG.md").read_text()
    for version in (2, 3):
        part = changelog.split(f"## Version {version}\n", 1)[1].split("## Version", 1)[0]
        rewritten[version] = {line.split()[3] for line in part.splitlines() if line.startswith("- Section rewritten: ")}
    assert rewritten[2] & rewritten[3]  # the same section written again by both updates
    assert len({v["survey.md"] for v in saved.values()}) == 3
    capsys.readouterr()
    for version in (1, 2, 3):
        assert cli.main(["show", "t1", "--db", str(db), "--version", str(version)]) == 0
        assert capsys.readouterr().out == saved[version]["survey.md"]
        there = tmp_path / f"v{version}"
        assert cli.main(["show", "t1", "--db", str(db), "--version", str(version), "-o", str(there)]) == 0
        assert {name: (there / name).read_text() for name in ("survey.md", "survey.json")} == saved[version]
