"""Shared by the Python test scripts: run `calsync serve` on a random port with demo data,
and report results in the 'N passed, M failed' form CI reads. Every urllib request of the
script carries a system token of the server's development issuer (`calsync token`), kept in
`TOKEN` for other clients."""

import contextlib
import pathlib
import subprocess
import sys
import tempfile
import urllib.request

DEMO = pathlib.Path(__file__).resolve().parent / "fixtures" / "demo"

# The bearer token of the running demo server (set by demo_server).
TOKEN = None


class _Bearer(urllib.request.BaseHandler):
    """Adds the token to every request urllib sends."""

    def http_request(self, req):
        if TOKEN and not req.has_header("Authorization"):
            req.add_unredirected_header("Authorization", "Bearer " + TOKEN)
        return req


@contextlib.contextmanager
def demo_server(binary, files):
    """Yields the base URL of a fresh server (temporary SQLite file) with `files` loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [binary, "serve", "--bind", "127.0.0.1:0", "--config", f"{tmp}/none",
               "--database", f"sqlite://{tmp}/demo.db?mode=rwc"]
        for f in files:
            cmd += ["--load", str(f)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            base = None
            for line in proc.stdout:
                if "FHIR server on" in line:
                    base = next(w for w in line.split() if w.startswith("http://"))
                    break
            if base is None:
                raise SystemExit("calsync serve did not start")
            global TOKEN
            TOKEN = subprocess.run([binary, "token", "--as", "system", "--config", f"{tmp}/none"],
                                   check=True, capture_output=True, text=True).stdout.strip()
            urllib.request.install_opener(urllib.request.build_opener(_Bearer()))
            yield base
        finally:
            proc.terminate()
            proc.wait()


def report(passed, failed):
    """Prints the failures and the tally; exits 1 when anything failed."""
    for f in failed:
        print("FAIL", f)
    print(f"{passed} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
