"""Exceptions a user may see. Each message says what went wrong, where, and what to do."""


class CrmLabError(Exception):
    """Base class: the CLI prints these without a traceback."""


class DatabaseLockedError(CrmLabError):
    """Another process holds the database file."""


class DatabaseMissingError(CrmLabError):
    """A reader asked for a database file that does not exist."""


class LoadError(CrmLabError):
    """A load was refused; nothing was written."""


class InvalidArgument(CrmLabError, ValueError):
    """A parameter has a bad value; the message names the parameter and the value."""
