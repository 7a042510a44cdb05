"""The bound C++ calls that wait (network, I/O, long simulations) release the GIL: other Python
threads of the process keep running. Each test makes the call depend on a Python thread of the same
process, so it can only finish if the GIL was released while it waited."""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import chase
from conftest import SOURCE_DIR

FIXTURES = os.path.join(SOURCE_DIR, "tests", "carbon", "fixtures", "carbon-aware-sdk")


class _ReplayHandler(BaseHTTPRequestHandler):
    """Answers the Carbon Aware SDK's two endpoints with the recorded fixtures."""

    def do_GET(self):  # noqa: N802  (http.server's name)
        name = "forecast.json" if "/forecasts/" in self.path else "bylocation.json"
        with open(os.path.join(FIXTURES, name), "rb") as f:
            body = f.read()
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def replay_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReplayHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_provider_refresh_releases_the_gil_while_it_waits(replay_server, monkeypatch, tmp_path):
    # The provider's HTTP server is a Python thread of this process: with the GIL held during
    # refresh(), it could never answer and refresh() would time out.
    monkeypatch.setenv("CARBON_AWARE_SDK_URL", f"http://127.0.0.1:{replay_server.server_port}")
    monkeypatch.setenv("CARBON_AWARE_SDK_LOCATION", "westeurope")
    monkeypatch.setenv("CHASE_CARBON_CACHE_DIR", str(tmp_path / "cache"))
    clock = chase.ManualClock(chase.to_unix_seconds("2026-03-01T12:17:00Z"))
    signal = chase.CarbonSignal.from_provider("carbon-aware-sdk", "", 6 * 3600, 900, clock)
    signal.refresh()
    assert signal.intensity_now() == pytest.approx(375)
    assert any(path.startswith("/emissions/bylocation") for path in replay_server.requests)
