"""The main job as a user runs it: ``refnet tour`` in a fresh process, default install, no settings.

Target: the whole tour (the identities, then every experiment at its small sizes on the
8x8 digits) within 2 minutes on 2 cores; measured about 6 s on a shared 2-core machine.
"""

import subprocess
import sys
import tempfile
from importlib.util import find_spec


class Tour:
    """``refnet tour``, the README's main command, end to end (import, data, training, tables)."""

    timeout = 600
    number = 1
    repeat = 3
    warmup_time = 0

    def setup(self):
        if find_spec("sklearn") is None:
            raise NotImplementedError("the tour's default data, the 8x8 digits, need scikit-learn")
        # A fresh folder: from the repository root, -m refnet would import the source tree.
        self.folder = tempfile.mkdtemp()

    def time_refnet_tour(self):
        subprocess.run([sys.executable, "-m", "refnet", "tour", "--quiet"], cwd=self.folder, check=True,
                       stdout=subprocess.DEVNULL)
