"""The one output writer: regular files replaced atomically, everything else written in place.

Device nodes and FIFOs are made with ``mknod``/``mkfifo`` in the test's own temp folder (never the
machine's /dev); a read-only and a full file system are real tmpfs mounts (root only, else skipped).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from isc_kit.errors import DestinationError
from isc_kit.outputs import TEMP_MARK, remove_dead_temps, write_json, write_output, write_text


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_MARK in p.name)


def _mknod(path: Path, major: int, minor: int) -> Path:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("mknod needs root (CAP_MKNOD)")
    return path


def _mount_tmpfs(target: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "mnt"
    _mount_tmpfs(target, "size=64k,mode=0777")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def test_new_file_is_written_with_umask_mode_and_no_temp_left(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    assert write_output(target, [b"a,b\n", b"1,2\n"]) == 8
    assert target.read_bytes() == b"a,b\n1,2\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert _temps(tmp_path) == []


def test_existing_file_is_replaced_atomically_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "m.pinned"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    before = target.stat().st_ino
    write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_ino != before  # replaced, not rewritten in place
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_symlink_to_a_regular_file_keeps_the_link_and_replaces_the_target(tmp_path: Path) -> None:
    real = tmp_path / "real" / "metrics.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "metrics.json"
    link.symlink_to(real)
    write_json(link, {"muap": 0.5})
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert json.loads(real.read_text()) == {"muap": 0.5}
    assert _temps(tmp_path) == []
    assert _temps(real.parent) == []


def test_char_device_is_written_in_place_never_replaced(tmp_path: Path) -> None:
    null = _mknod(tmp_path / "null", 1, 3)
    ino = null.stat().st_ino
    write_output(null, b"x" * 100_000)
    st = os.lstat(null)
    assert stat.S_ISCHR(st.st_mode)
    assert st.st_ino == ino
    assert st.st_rdev == os.makedev(1, 3)
    assert _temps(tmp_path) == []


def test_symlink_to_a_device_like_dev_stdout_keeps_both(tmp_path: Path) -> None:
    null = _mknod(tmp_path / "null", 1, 3)
    link = tmp_path / "stdout"
    link.symlink_to(null)
    write_text(link, "hello\n")
    assert link.is_symlink()
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_full_device_gives_one_line_no_space_error(tmp_path: Path) -> None:
    full = _mknod(tmp_path / "full", 1, 7)
    with pytest.raises(DestinationError, match="no space left") as info:
        write_output(full, b"x" * 10)
    assert "\n" not in str(info.value)
    assert str(full) in str(info.value)
    assert stat.S_ISCHR(os.lstat(full).st_mode)


def test_fifo_is_streamed_into_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    t = threading.Thread(target=reader)
    t.start()
    write_output(fifo, (b"row\n" for _ in range(50_000)))
    t.join(10)
    assert got == [b"row\n" * 50_000]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _temps(tmp_path) == []


def test_dev_fd_alias_writes_to_the_open_descriptor(tmp_path: Path) -> None:
    r, w = os.pipe()
    try:
        write_text(f"/dev/fd/{w}", "through the pipe\n")
        os.close(w)
        w = -1
        assert os.read(r, 100) == b"through the pipe\n"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_process_substitution_path_from_bash(tmp_path: Path) -> None:
    out = tmp_path / "got.txt"
    script = "import sys; from isc_kit.outputs import write_text; write_text(sys.argv[1], 'via bash\\n')"
    subprocess.run(
        ["bash", "-c", f'"$0" -c "$1" >(cat > {out})', sys.executable, script],
        check=True,
        timeout=60,
    )
    for _ in range(100):  # cat may still be flushing after python exits
        if out.exists() and out.read_text():
            break
        threading.Event().wait(0.05)
    assert out.read_text() == "via bash\n"


def test_dash_means_stdout(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    write_output("-", [b"a", b"b\n"])
    assert capsysbinary.readouterr().out == b"ab\n"
    assert not (Path.cwd() / "-").exists()


def test_folder_and_missing_folder_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DestinationError, match="it is a folder") as info:
        write_output(tmp_path, b"x")
    assert "\n" not in str(info.value)
    missing = tmp_path / "no" / "such" / "out.csv"
    with pytest.raises(DestinationError, match="does not exist; create it"):
        write_output(missing, b"x")
    write_output(missing, b"x", make_parents=True)
    assert missing.read_bytes() == b"x"


def test_error_in_the_data_removes_the_temp_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "p.csv"
    target.write_bytes(b"precious")

    def chunks() -> Iterator[bytes]:
        yield b"half"
        raise RuntimeError("producer died")

    with pytest.raises(RuntimeError):
        write_output(target, chunks())
    assert target.read_bytes() == b"precious"
    assert _temps(tmp_path) == []


def test_socket_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    try:
        with pytest.raises(DestinationError, match="socket"):
            write_output(path, b"x")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        sock.close()


def test_read_only_file_system_is_a_destination_error(tmpfs: Path) -> None:
    (tmpfs / "keep.json").write_text("{}")
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    with pytest.raises(DestinationError, match="read-only") as info:
        write_json(tmpfs / "keep.json", {"a": 1})
    assert "\n" not in str(info.value)
    assert (tmpfs / "keep.json").read_text() == "{}"


def test_full_file_system_leaves_no_temp_and_the_old_file(tmpfs: Path) -> None:
    (tmpfs / "big.bin").write_bytes(b"old")
    with pytest.raises(DestinationError, match="no space left"):
        write_output(tmpfs / "big.bin", [b"x" * 32_768] * 4)
    assert (tmpfs / "big.bin").read_bytes() == b"old"
    assert _temps(tmpfs) == []


def test_read_only_folder_for_an_unprivileged_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("dropping to another user needs root")
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(folder, 0o555)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child drops to nobody and reports the error text through the pipe
        code = 0
        try:
            os.setuid(65534)
            write_output(folder / "out.csv", b"x")
        except DestinationError as err:
            os.write(w, str(err).encode())
        except BaseException as err:
            os.write(w, f"unexpected {type(err).__name__}: {err}".encode())
            code = 1
        os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    message = os.read(r, 4096).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0, message
    assert "permission denied" in message
    assert str(folder / "out.csv") in message
    assert list(folder.iterdir()) == []


def test_remove_dead_temps_keeps_live_writers(tmp_path: Path) -> None:
    dead_pid = _dead_pid()
    dead = tmp_path / f".m.pinned{TEMP_MARK}{dead_pid}-abcd1234"
    live = tmp_path / f".m.pinned{TEMP_MARK}{os.getpid()}-abcd1234"
    other = tmp_path / f".other{TEMP_MARK}{dead_pid}-00"
    for p in (dead, live, other):
        p.write_bytes(b"")
    assert remove_dead_temps(tmp_path, "m.pinned") == 1
    assert not dead.exists()
    assert live.exists()
    assert other.exists()
    assert remove_dead_temps(tmp_path) == 1
    assert not other.exists()
    write_output(tmp_path / "m.pinned", b"x")  # the writer also sweeps its own name's dead temps
    assert live.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return proc.pid
    raise OSError(errno.ESRCH, "could not find a dead pid")


# ---------------------------------------------------------------------------------------------- CLI -o

META = "image_id,s3_uri,md5_checksum\n" + "".join(
    f"R{i:06d},s3://drivendata-competition-fb-isc-data/all/reference_images/R{i:06d}.jpg,{i:032x}\n"
    for i in range(3)
)


def _manifest_argv(tmp_path: Path, output: str) -> list[str]:
    meta = tmp_path / "meta.csv"
    meta.write_text(META)
    return ["-q", "manifest", "reference", "--metadata", str(meta), "-o", output]


def test_manifest_o_onto_a_device_node_keeps_the_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from isc_kit.cli.main import main

    null = _mknod(tmp_path / "null", 1, 3)
    assert main(_manifest_argv(tmp_path, str(null))) == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    assert "3 reference images" in capsys.readouterr().out


def test_manifest_o_dash_writes_the_pinned_bytes_to_stdout(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    from isc_kit.cli.main import main

    assert main(_manifest_argv(tmp_path, "-")) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"# isc-kit pinned manifest")
    assert out.count(b"\nR00000") == 3
    assert b"3 reference images" in err
    assert not (tmp_path / "-").exists()


def test_manifest_o_process_substitution(tmp_path: Path) -> None:
    argv = _manifest_argv(tmp_path, "OUT")
    got = tmp_path / "got.pinned"
    cmd = " ".join(f"'{a}'" for a in [sys.executable, "-m", "isc_kit", *argv[:-1]]) + f" >(cat > '{got}')"
    done = subprocess.run(["bash", "-c", cmd + "; wait"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for _ in range(100):
        if got.exists() and got.stat().st_size:
            break
        threading.Event().wait(0.05)
    assert got.read_bytes().count(b"\nR00000") == 3


def test_write_predictions_onto_a_fifo(tmp_path: Path) -> None:
    from isc_kit.evaluate import write_predictions

    fifo = tmp_path / "pred.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    t.start()
    assert write_predictions(fifo, [("Q00001", "R000001", 0.5)]) == 1
    t.join(10)
    assert got == [b"query_id,reference_id,score\nQ00001,R000001,0.5\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def _jpegs(folder: Path, letter: str, n: int) -> Path:
    from PIL import Image

    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (32, 24), (40 * i, 255 - 40 * i, 90)).save(
            folder / f"{letter}{i:0{5 if letter == 'Q' else 6}d}.jpg"
        )
    return folder


def test_baseline_o_onto_a_device_and_dash(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    from isc_kit.cli.main import main

    queries, refs = _jpegs(tmp_path / "q", "Q", 2), _jpegs(tmp_path / "r", "R", 3)
    null = _mknod(tmp_path / "null", 1, 3)
    assert (
        main(["-q", "baseline", str(queries), str(refs), "-o", str(null), "--top-k", "2", "--jobs", "1"]) == 0
    )
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    capsysbinary.readouterr()
    assert main(["-q", "baseline", str(queries), str(refs), "-o", "-", "--top-k", "2", "--jobs", "1"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"query_id,reference_id,score\n")
    assert out.count(b"\nQ0000") == 4  # 2 queries x top 2, and nothing else on stdout
    assert b"wrote 4 predictions" in err
    assert main(["-q", "baseline", str(queries), str(refs), "-o", str(tmp_path / "no" / "p.csv")]) == 7
