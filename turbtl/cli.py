"""What the command-line entry points share (``python -m turbtl.config``, ``turbtl.report``,
``turbtl.replicates``, ``turbtl.rulegraph``): a bad argument or a failure is one line on
stderr and a non-zero exit status, never a traceback.  ``TURBTL_DEBUG=1`` shows the traceback
of an unexpected error."""
from __future__ import annotations

import argparse
import functools
import os
import sys

__all__ = ["ArgumentParser", "one_line_errors"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line (exit status 2)."""

    def error(self, message):
        message = " ".join(message.split())  # one line, whatever the arguments held
        self.exit(2, f"{self.prog}: error: {message}; fix: see {self.prog} --help\n")


def one_line_errors(prog: str):
    """Decorate a ``main``: a turbtl error (its message names the fix), a missing or unreadable
    file and any other error become one line on stderr, ``PROG: error: ...``, and exit status 1."""
    from . import TurbtlError

    def wrap(main):
        @functools.wraps(main)
        def run(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except (SystemExit, KeyboardInterrupt):
                raise
            except TurbtlError as e:
                msg = " ".join(str(e).split())
            except OSError as e:
                msg = f"{e.strerror or e}: {e.filename}; fix: check the path" if e.filename else str(e)
            except Exception as e:  # an unexpected error: still one line, the traceback on request
                if os.environ.get("TURBTL_DEBUG") == "1":
                    raise
                msg = f"{type(e).__name__}: {e} (TURBTL_DEBUG=1 shows where)"
            sys.exit(f"{prog}: error: {' '.join(msg.split())}")

        return run

    return wrap
