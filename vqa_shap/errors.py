"""Exceptions shared across vqa-shap."""

from __future__ import annotations


class VqaShapError(Exception):
    """Base class of every error vqa-shap raises on purpose.

    Raised on purpose means the user can act on it (a bad argument, file, record or setting), so the
    CLI prints the message on one line and exits with :attr:`exit_status` 2; see :class:`InternalError`.
    """

    #: exit status of the ``vqa-shap`` command for this error
    exit_status = 2


class InternalError(VqaShapError):
    """Not caused by the user's input: a broken invariant (a bug) or an unreachable service; exit status 1."""

    exit_status = 1


class UsageError(VqaShapError):
    """Bad input found before any work (an argument, an output path); the CLI exits with status 2."""


class RecordError(VqaShapError, ValueError):
    """A source record is invalid.

    The message always names the file, the record id and the field, so a user can find and fix it.

    Args:
        file: path of the file the record came from.
        record: the record id (qid) or, when it has none, its position.
        field: the offending field.
        reason: what is wrong with it.
    """

    def __init__(self, file: str, record: str, field: str, reason: str):
        self.file = str(file)
        self.record = str(record)
        self.field = str(field)
        self.reason = reason
        super().__init__(f"{self.file}: record {self.record!r}: field {self.field!r}: {reason}")


class RegistryError(VqaShapError, KeyError):
    """An unknown name was asked of a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""
