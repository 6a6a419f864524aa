"""The outbox rotates by size, keeps N files, and never writes a delivery twice across a rotation, whether
the earlier line is in a rotated file, was written by another process, or by an earlier life of this one."""

from __future__ import annotations

import multiprocessing
import stat
from collections import Counter
from pathlib import Path

import pytest

from activities.outbox import Outbox
from tocsin.settings import DEFAULT_OUTBOX_KEEP, DEFAULT_OUTBOX_MAX_BYTES, load_settings

PAD = "x" * 60  # about 100 bytes a line: a 250-byte file holds two


def record(n: int) -> dict[str, str]:
    return {"id": f"incident-k/abc/page/0/{n}", "message": PAD}


def ids(outbox: Outbox) -> list[str]:
    return [line["id"] for line in outbox.read()]


def test_rotation_keeps_n_files_of_bounded_size_and_reads_oldest_first(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.jsonl", max_bytes=250, keep=2)
    for n in range(20):
        assert outbox.append(record(n))
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert names == ["outbox.jsonl", "outbox.jsonl.1", "outbox.jsonl.2"]
    assert all(p.stat().st_size <= 250 for p in tmp_path.glob("outbox.jsonl*"))
    # Three files of two lines: the last six deliveries, in the order they were written.
    assert ids(outbox) == [record(n)["id"] for n in range(14, 20)]
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_an_id_in_a_rotated_file_is_never_written_again(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    writer = Outbox(path, max_bytes=250, keep=3)
    stale = Outbox(path, max_bytes=250, keep=3)  # another worker: reads once, then falls behind
    assert stale.append(record(0))
    for n in range(1, 6):  # two rotations: record 0 is now in outbox.jsonl.2
        assert writer.append(record(n))
    assert record(0)["id"] in path.with_name("outbox.jsonl.2").read_text()

    assert not writer.append(record(0)), "the writer read it before rotating"
    assert not stale.append(record(3)), "the other worker catches up through the rotated files"
    assert not Outbox(path, max_bytes=250, keep=3).append(record(1)), "a fresh start reads the rotated files"
    assert Counter(ids(writer)) == Counter(record(n)["id"] for n in range(6))


def test_a_process_far_behind_rereads_every_kept_file(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    writer = Outbox(path, max_bytes=250, keep=2)
    idle = Outbox(path, max_bytes=250, keep=2)
    assert idle.append(record(100))  # then idle while others rotate more often than it keeps files
    for n in range(12):
        writer.append(record(n))
    assert not idle.append(record(11)) and not idle.append(record(8))
    assert idle.append(record(101))
    assert Counter(ids(writer)).most_common(1)[0][1] == 1


def _hammer(path: str, start: int) -> None:
    outbox = Outbox(Path(path), max_bytes=400, keep=100)
    for n in range(start, start + 60):  # the two workers overlap on 30 ids
        outbox.append(record(n))


def test_two_processes_sharing_a_rotating_outbox_write_each_id_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_hammer, args=(str(path), start)) for start in (0, 30)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    written = Counter(ids(Outbox(path, keep=100)))
    assert set(written) == {record(n)["id"] for n in range(90)}
    assert max(written.values()) == 1
    assert len(list(tmp_path.glob("outbox.jsonl.*[0-9]"))) > 5, "the test should have rotated often"


def test_rotation_settings_come_from_the_environment_and_a_bad_value_is_a_clear_error() -> None:
    defaults = load_settings({})
    assert (defaults.outbox_max_bytes, defaults.outbox_keep) == (DEFAULT_OUTBOX_MAX_BYTES, DEFAULT_OUTBOX_KEEP)
    assert DEFAULT_OUTBOX_MAX_BYTES == 10 * 1024 * 1024 and DEFAULT_OUTBOX_KEEP == 5
    custom = load_settings({"TOCSIN_OUTBOX_MAX_BYTES": "1048576", "TOCSIN_OUTBOX_KEEP": "3"})
    assert (custom.outbox_max_bytes, custom.outbox_keep) == (1048576, 3)
    for name, value in [
        ("TOCSIN_OUTBOX_MAX_BYTES", "10M"),
        ("TOCSIN_OUTBOX_MAX_BYTES", "10"),
        ("TOCSIN_OUTBOX_KEEP", "0"),
        ("TOCSIN_OUTBOX_KEEP", "-1"),
    ]:
        with pytest.raises(ValueError, match=f"^{name}='{value}' is not a whole number of"):
            load_settings({name: value})
