"""The exception hierarchy: one root, subclasses that also inherit the matching builtin.

Every error carries its facts as attributes (``path``, ``line``, ``url`` ...) so the CLI and
the widgets can format them; ``str(err)`` is already a complete, one-paragraph message that
says what failed, where, and what to try.
"""

from __future__ import annotations

from dataclasses import dataclass


class IscKitError(Exception):
    """Root of every error isc_kit raises on purpose."""

    exit_code = 1


class ConfigError(IscKitError, ValueError):
    """A setting (argument, environment variable or params.yaml entry) is invalid."""

    exit_code = 2


class UnknownSetError(ConfigError, KeyError):
    """A set name that the catalog does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Problem:
    """One bad line of an input file."""

    line: int
    column: str
    value: str
    message: str

    def format(self) -> str:
        shown = self.value if len(self.value) <= 80 else self.value[:77] + "..."
        where = f"line {self.line}" if self.line > 0 else "file"
        col = f", column {self.column}" if self.column else ""
        return f"{where}{col}: {self.message} (value {shown!r})"


class InputFileError(IscKitError, ValueError):
    """An input file (metadata CSV, pinned manifest, id list, ground truth) is malformed.

    ``problems`` lists up to the first 20 bad lines; ``total`` counts all of them.
    """

    exit_code = 3
    max_shown = 20

    def __init__(self, path: str, problems: list[Problem], *, total: int | None = None, hint: str = ""):
        self.path = str(path)
        self.problems = problems[: self.max_shown]
        self.total = total if total is not None else len(problems)
        self.hint = hint
        super().__init__(self._message())

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None

    def _message(self) -> str:
        head = self.problems[0].format() if self.problems else "unreadable"
        more = f" (+{self.total - 1} more problem{'s' if self.total > 2 else ''})" if self.total > 1 else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{self.path}: {head}{more}{hint}"

    @classmethod
    def from_read_error(cls, path: str, err: Exception, line: int = 0) -> InputFileError:
        """The error for a file that could not be read as CSV text (csv, decoding or OS error)."""
        if isinstance(err, UnicodeDecodeError):
            return cls(
                path, [Problem(line, "", "", f"not UTF-8 text ({err.reason})")], hint="is this a CSV file?"
            )
        if isinstance(err, OSError):
            return cls(path, [Problem(0, "", "", f"cannot read ({err.strerror})")])
        return cls(path, [Problem(line, "", "", f"unreadable CSV ({err})")])

    def details(self) -> str:
        """All shown problems, one per line, for ``-v`` or a report."""
        lines = [f"{self.path}: {self.total} problem(s), first {len(self.problems)} shown:"]
        lines += [f"  {p.format()}" for p in self.problems]
        if self.hint:
            lines.append(f"  fix: {self.hint}")
        return "\n".join(lines)


class InputPathError(InputFileError):
    """An input path that is not a readable regular file within its size cap (a folder, a FIFO, a device,
    a missing file, a file too large); ``str(err)`` is ``PATH: what is wrong; what to pass instead``."""

    def __init__(self, path: str, message: str, *, hint: str = ""):
        self.message = message
        super().__init__(path, [Problem(0, "", str(path), message)], hint=hint)

    def _message(self) -> str:
        return f"{self.path}: {self.message}" + (f"; {self.hint}" if self.hint else "")


class ProblemCollector:
    """Collects the problems of one file as they are found, keeping the first ``max_shown``.

    Call it like a function, ``problem(line, column, value, message)``; ``total`` counts all.
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.total = 0

    def __call__(self, line: int, column: str, value: str, message: str) -> None:
        self.total += 1
        if len(self.problems) < InputFileError.max_shown:
            self.problems.append(Problem(line, column, value, message))

    def raise_if_any(
        self, path: str, *, hint: str = "", extra: list[Problem] | None = None, extra_total: int = 0
    ) -> None:
        """Raise :class:`InputFileError` with the problems (plus ``extra``) sorted by line, if any."""
        found = sorted(self.problems + (extra or []), key=lambda p: p.line)[: InputFileError.max_shown]
        if found:
            raise InputFileError(path, found, total=self.total + extra_total, hint=hint)


class SourceError(IscKitError, OSError):
    """The S3 source could not be reached or refused access."""

    exit_code = 4

    def __init__(self, message: str, *, url: str = ""):
        self.url = url
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class ObjectNotFoundError(SourceError, FileNotFoundError):
    """An object (or bucket) does not exist at the source."""


class AccessDeniedError(SourceError, PermissionError):
    """The source refused the request (403)."""


class ChecksumMismatchError(IscKitError, ValueError):
    """Bytes whose MD5 differs from what the manifest says."""

    exit_code = 5

    def __init__(self, name: str, expected: str, actual: str, *, action: str = "the download was discarded"):
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"md5 of {name} is {actual}, manifest says {expected}; {action}. "
            "Retry, or check the manifest's source."
        )


class UnsafePathError(IscKitError, ValueError):
    """A path derived from input would resolve outside its destination."""

    exit_code = 3


class DvcError(IscKitError, RuntimeError):
    """A DVC repository is missing or in a state isc_kit cannot work with."""

    exit_code = 6


class EmptySelectionError(ConfigError):
    """A selection that keeps no image (an error unless the caller allows empty selections)."""


class DestinationError(IscKitError, OSError):
    """The local destination cannot be written (read-only, full, no permission) or is busy."""

    exit_code = 7

    def __str__(self) -> str:
        return str(self.args[0])
