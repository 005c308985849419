"""The one base class for errors caused by user input (configs, files, codes).

The CLI prints these as one clear line and exits with status 2; anything else is a bug and keeps
its traceback. Every stage's input errors subclass :class:`ModsentError`.
"""


class ModsentError(ValueError):
    """Bad input: the message says what is wrong, where (file, line, key) and how to fix it."""


def first_line(err: BaseException) -> str:
    """The first line of ``err``'s message (its type's name when the message is empty), for one-line errors."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def innermost_user_error(err: BaseException) -> ModsentError | None:
    """The deepest :class:`ModsentError` in ``err``'s chain of causes, or ``None``.

    A worker's error reaches the driver wrapped (Ray's ``RayTaskError(ModelError)`` is a ``ModelError``
    whose message is the worker's whole traceback); the one the worker raised is the line to show.
    """
    found, seen = None, set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModsentError):
            found = current
        current = getattr(current, "cause", None) or current.__cause__
    return found
