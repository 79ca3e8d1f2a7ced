"""scripts/_bootstrap.py puts this checkout's src/ first, whatever is on sys.path already."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_the_checkouts_own_src_wins_over_another_install(tmp_path):
    """Snakemake may have appended this checkout's src/ already, behind an editable install of
    another checkout: the bootstrap must still put it first (it skipped it)."""
    other = tmp_path / "other-checkout" / "src"
    (other / "vicokd").mkdir(parents=True)
    (other / "vicokd" / "__init__.py").write_text("WHO = 'the other checkout'\n")
    code = (f"import sys; sys.path.insert(0, {str(other)!r}); "
            f"sys.path.append({str(REPO / 'src')!r}); "
            f"sys.path.insert(0, {str(REPO / 'scripts')!r}); "
            "import _bootstrap, vicokd; print(vicokd.__file__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(REPO / "src" / "vicokd" / "__init__.py")
