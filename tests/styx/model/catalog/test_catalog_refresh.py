"""``styx catalog refresh`` against a local HTTP server: atomic saves, metadata, clear offline errors."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from styx.app.cli import main
from styx.model.catalog import CatalogRefreshError, load_catalog, refresh

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx-home"))
    monkeypatch.delenv("SKY_RUNTIME_DIR", raising=False)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path):
    """A local server for a directory laid out like the public catalog: <cloud>/vms.csv."""
    root = tmp_path / "www" / "catalogs" / "v8"
    for cloud in ("aws", "gcp", "lambda"):
        (root / cloud).mkdir(parents=True)
        (root / cloud / "vms.csv").write_bytes((DATA / cloud / "vms.csv").read_bytes())
    (root / "broken").mkdir()
    (root / "broken" / "vms.csv").write_text("<html><body>429 Too Many Requests</body></html>\n")
    handler = functools.partial(_Quiet, directory=str(tmp_path / "www"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/catalogs/v8", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/catalogs/v8"


def test_refresh_downloads_into_styx_cache_with_metadata(server, tmp_path):
    url, root = server
    before = time.time()
    results = refresh(["aws", "gcp"], base_url=url, timeout=10)
    assert [r.cloud for r in results] == ["aws", "gcp"]
    cache = tmp_path / "styx-home" / "catalogs" / "v8"
    for cloud in ("aws", "gcp"):
        f = cache / cloud / "vms.csv"
        assert f.read_bytes() == (root / cloud / "vms.csv").read_bytes()
        meta = json.loads((cache / cloud / "vms.csv.meta.json").read_text())
        assert meta["url"] == f"{url}/{cloud}/vms.csv" and meta["fetched_at"] >= before
        assert len(meta["sha256"]) == 64
    assert not list(cache.rglob("*.tmp"))
    c = load_catalog()  # found in the cache, with its source and age
    assert c.sources["aws"].origin == "styx cache" and c.sources["aws"].url.endswith("/aws/vms.csv")
    assert c.sources["aws"].age_days < 0.01 and c.warnings == []


def test_refresh_failure_keeps_the_old_copy_and_names_url_and_cause(server, tmp_path):
    url, _ = server
    dest = tmp_path / "dest"
    refresh(["lambda"], base_url=url, dest=dest, timeout=10)
    good = (dest / "lambda" / "vms.csv").read_bytes()
    with pytest.raises(CatalogRefreshError) as ei:
        refresh(["broken", "nosuchcloud", "lambda"], base_url=url, dest=dest, timeout=10)
    msg = str(ei.value)
    assert f"{url}/broken/vms.csv is not a v8 vms.csv catalog" in msg
    assert f"could not download {url}/nosuchcloud/vms.csv: HTTP 404" in msg
    assert [r.cloud for r in ei.value.results] == ["lambda"]  # the good one was still saved
    assert not (dest / "broken").exists()
    assert (dest / "lambda" / "vms.csv").read_bytes() == good


def test_refresh_offline_is_a_clear_error(tmp_path):
    url = _closed_port_url()
    with pytest.raises(CatalogRefreshError) as ei:
        refresh(["aws"], base_url=url, dest=tmp_path / "d", timeout=5)
    assert f"could not download {url}/aws/vms.csv" in str(ei.value)
    assert "refused" in str(ei.value).lower()
    assert not (tmp_path / "d" / "aws" / "vms.csv").exists()


def test_cli_refresh_ok_and_offline_exit_codes(server, tmp_path):
    url, _ = server
    r = CliRunner().invoke(main, ["catalog", "refresh", "--cloud", "aws", "--url", url, "--timeout", "10"])
    assert r.exit_code == 0, r.output
    assert "saved aws" in r.stdout
    assert (tmp_path / "styx-home" / "catalogs" / "v8" / "aws" / "vms.csv").is_file()

    bad = _closed_port_url()
    r = CliRunner().invoke(main, ["catalog", "refresh", "--cloud", "gcp", "--url", bad, "--timeout", "5"])
    assert r.exit_code == 1
    assert f"{bad}/gcp/vms.csv" in r.stderr and "refused" in r.stderr.lower()
    assert r.stdout == ""


def test_cli_catalog_show_lists_sources(server):
    url, _ = server
    refresh(["lambda"], base_url=url, timeout=10)
    r = CliRunner().invoke(main, ["catalog", "show", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    [src] = data["catalogs"]
    assert src["cloud"] == "lambda" and src["origin"] == "styx cache" and src["offers"] == 4
