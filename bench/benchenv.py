"""What the delivery benchmarks (bench/delivery_p2p.py, delivery_login.py)
record about the conditions of a run: the load of this shared machine and
the source the measured binary came from."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def loadavg():
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def source_version():
    """The commit the measured binary was presumably built from, and whether
    src/ differed from it when the run started; IMGATE_BUILT_FROM (say, a
    commit whose tree was built elsewhere) overrides the guess."""
    if os.environ.get("IMGATE_BUILT_FROM"):
        return {"built_from": os.environ["IMGATE_BUILT_FROM"]}

    def git(*args):
        p = subprocess.run(["git", "-C", ROOT] + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
        return p.stdout.strip() if p.returncode == 0 else None
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "src")
    return {"head": head, "src_modified": bool(dirty) if dirty is not None else None}
