"""What an idle manager loads: never the ``cryptography`` package (about 9 MB).

A manager needs it to seal or open a secret, to sign or renew a certificate,
at swarm init and under autolock -- not to start, follow the log, lead, or
wait for its certificate's renewal time.  These run in a fresh interpreter,
since this test process has loaded it long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cluster.security.pki import MANAGER_ROLE, CertificateAuthority


def _loaded_after(code: str) -> dict[str, bool]:
    probe = (
        code
        + "\nimport json, sys\nprint(json.dumps({'cryptography': 'cryptography' in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_a_manager_loads_no_cryptography() -> None:
    assert _loaded_after("import cluster.manager.process") == {"cryptography": False}


def test_waiting_for_the_renewal_time_and_knowing_a_peer_load_no_cryptography(
    tmp_path: Path,
) -> None:
    files = CertificateAuthority.create("c1").issue_files(tmp_path, "manager1", MANAGER_ROLE, "c1")
    code = f"""
import random
from cluster.security.expiry import renewal_time
from cluster.security.renewal import Renewer
from raft.runtime.tls import TLSFiles
files = TLSFiles.in_dir(__import__("pathlib").Path({str(tmp_path)!r}))
renewer = Renewer("manager1", files, None, random.Random(1))
assert renewal_time(renewer.validity(), random.Random(1)) is not None
files.server_context(), files.client_context()
"""
    assert _loaded_after(code) == {"cryptography": False}
    assert files.cert.exists()
