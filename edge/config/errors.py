"""The one error the config raises: a file, a key, a problem and what is expected."""


class ConfigError(Exception):
    """The config cannot run: the message names the file, the key, the problem and what is expected."""
