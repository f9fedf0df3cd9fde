"""The one input reader: regular files (or '-') under a cap; FIFOs, devices and folders refused at once.

Special files are made in the test's temp folder (``mkfifo``; ``mknod`` c 1 5 is a /dev/zero, c 1 9
a /dev/urandom). The CLI cases run in a subprocess with a timeout and a memory cap, so the unfixed
behaviour (blocking on a FIFO, reading /dev/zero until the OOM killer) fails the test instead of
hanging the machine.
"""

from __future__ import annotations

import io
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from isc_kit import inputs
from isc_kit.errors import InputFileError, InputPathError
from isc_kit.inputs import check_local_input, read_input

ZERO = (1, 5)
URANDOM = (1, 9)


def _mknod(path: Path, dev: tuple[int, int]) -> Path:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(*dev))
    except PermissionError:
        pytest.skip("mknod needs root (CAP_MKNOD)")
    return path


def test_regular_file_and_symlink_to_it(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(b"x" * 100)
    link = tmp_path / "link.csv"
    link.symlink_to(f)
    assert read_input(f, what="metadata CSV", limit=100) == b"x" * 100
    assert read_input(link, what="metadata CSV", limit=100) == b"x" * 100


def test_file_over_the_cap_is_refused_naming_sizes(tmp_path: Path) -> None:
    f = tmp_path / "big.csv"
    f.write_bytes(b"x" * 101)
    with pytest.raises(InputPathError, match=r"over the 0\.0 MiB limit for a id list") as info:
        read_input(f, what="id list", limit=100)
    assert str(f) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: os.mkfifo(p), "FIFO"),
        (lambda p: _mknod(p, ZERO), "character device"),
        (lambda p: _mknod(p, URANDOM), "character device"),
        (lambda p: p.mkdir(), "folder"),
    ],
    ids=["fifo", "zero", "urandom", "folder"],
)
def test_special_files_are_refused_without_reading(
    tmp_path: Path, make: Callable[[Path], object], kind: str
) -> None:
    path = tmp_path / "input"
    make(path)
    with pytest.raises(InputPathError, match=kind) as info:
        read_input(path, what="metadata CSV", limit=1 << 30)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "metadata CSV" in message  # says what to pass instead
    assert isinstance(info.value, InputFileError)
    with pytest.raises(InputPathError, match=kind):
        check_local_input(path, what="params.yaml", limit=100)


def test_stdin_dash_is_read_and_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Q00001\n")))
    assert read_input("-", what="id list", limit=100) == b"Q00001\n"
    zero = _mknod(tmp_path / "zero", ZERO)
    with open(zero, "rb", buffering=0) as endless:  # an endless stream: at most limit + 1 bytes are read
        counted = _Counting(endless)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(counted)))
        with pytest.raises(InputPathError, match="holds more than that"):
            read_input("-", what="metadata CSV", limit=1 << 20)
        assert (1 << 20) + 1 <= counted.n < (1 << 20) + (1 << 16)


class _Counting(io.RawIOBase):
    def __init__(self, raw: io.RawIOBase):
        self.raw, self.n = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        got = self.raw.readinto(b) or 0
        self.n += got
        return got


def test_a_file_that_grows_after_the_stat_is_still_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "growing.csv"
    f.write_bytes(b"x" * 10)
    real_check = inputs._check_stat
    calls = []

    def check_then_grow(text: str, st: os.stat_result, what: str, limit: int) -> None:
        real_check(text, st, what, limit)
        calls.append(st.st_size)
        if len(calls) == 2:  # after the last check, before the read: another process appends
            with open(f, "ab") as fh:
                fh.write(b"y" * 1000)

    monkeypatch.setattr(inputs, "_check_stat", check_then_grow)
    with pytest.raises(InputPathError, match="over the"):
        read_input(f, what="metadata CSV", limit=100)


def test_s3_size_is_checked_from_info_first(make_bucket: Callable[..., str], s3_endpoint: str) -> None:
    import s3fs

    bucket = make_bucket({"meta/big.csv": b"x" * 5000, "meta/ok.csv": b"fine"})
    fs = s3fs.S3FileSystem(anon=True, client_kwargs={"endpoint_url": s3_endpoint})
    opened = []
    real_open = fs.open
    fs.open = lambda *a, **k: opened.append(a) or real_open(*a, **k)  # type: ignore[method-assign]
    with pytest.raises(InputPathError, match=r"is 0\.0 MiB, over the"):
        read_input(f"s3://{bucket}/meta/big.csv", what="metadata CSV", limit=1000, fs=fs)
    assert opened == []  # refused from the size alone
    assert read_input(f"s3://{bucket}/meta/ok.csv", what="metadata CSV", limit=1000, fs=fs) == b"fine"


# ---------------------------------------------------------------------------------------------- CLI

META = "image_id,s3_uri,md5_checksum\nR000000,s3://drivendata-competition-fb-isc-data/all/reference_images/R000000.jpg,{}\n"
PRED = "query_id,reference_id,score\nQ00001,R000001,0.9\n"
GT = "query_id,reference_id\nQ00001,R000001\n"

# input -> argv ({x} is the special file, {d} the folder)
CLI_CASES: dict[str, object] = {
    "metadata": ["ls", "reference", "--metadata", "{x}"],
    "id-file": ["ls", "reference", "--metadata", "{d}/meta.csv", "--id-file", "{x}"],
    "ground-truth": ["eval", "{d}/pred.csv", "--ground-truth", "{x}"],
    "predictions": ["eval", "{x}", "--ground-truth", "{d}/gt.csv"],
    "pinned": ["verify", "{x}", "{d}/dest"],
    "params": ["stage", "manifest", "reference", "-o", "{d}/out.pinned", "--params", "{x}"],
}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.mark.parametrize("special", ["fifo", "zero"])
@pytest.mark.parametrize("argv", list(CLI_CASES.values()), ids=list(CLI_CASES))
def test_cli_refuses_special_inputs_at_once(tmp_path: Path, argv: list[str], special: str) -> None:
    (tmp_path / "meta.csv").write_text(META.format("0" * 32))
    (tmp_path / "pred.csv").write_text(PRED)
    (tmp_path / "gt.csv").write_text(GT)
    x = tmp_path / "special"
    if special == "fifo":
        os.mkfifo(x)
    else:
        _mknod(x, ZERO)
    argv = [a.replace("{x}", str(x)).replace("{d}", str(tmp_path)) for a in argv]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "isc_kit", "-q", *argv],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=tmp_path,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"isc-kit {argv[0]} on a {special} did not return within 20 s")
    assert done.returncode in (2, 3), done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(x) in lines[0]
    assert "not a regular file" in lines[0]
    assert stat.S_ISFIFO(os.lstat(x).st_mode) or stat.S_ISCHR(os.lstat(x).st_mode)
