"""notifyctl: the notify service from a terminal (see ``notifyctl --help``)."""
