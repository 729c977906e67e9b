"""CI-sized runs of the crash harness (the full run is by hand: --kills 50)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_kills_at_random_moments_and_inside_commits_and_compactions_lose_nothing(tmp_path):
    out = tmp_path / "summary.json"
    r = subprocess.run([sys.executable, os.path.join(HERE, "crash_harness.py"), "--kills", "10",
                        "--quick", "--quiet", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    import json
    s = json.loads(out.read_text())
    assert s["ok"] and s["kills"] >= 10
    assert s["lost"] == 0 and s["duplicated"] == 0
    assert s["rows_checked"] > 0
