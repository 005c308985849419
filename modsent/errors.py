"""The one base class for errors caused by user input (configs, files, codes).

The CLI prints these as one clear line and exits with status 2; anything else is a bug and keeps
its traceback. Every stage's input errors subclass :class:`ModsentError`.
"""


class ModsentError(ValueError):
    """Bad input: the message says what is wrong, where (file, line, key) and how to fix it."""
