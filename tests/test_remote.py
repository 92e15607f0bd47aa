"""Remote URIs through pyarrow.fs: a real S3 client against a local S3 server (moto) on loopback."""

from __future__ import annotations

import json
import socket

import pyarrow.fs as pafs
import pytest

from tests.conftest import curate_proc, read_rows

moto_server = pytest.importorskip("moto.server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    fs = pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1", scheme="http",
                           endpoint_override=f"127.0.0.1:{port}", allow_bucket_creation=True)
    fs.create_dir("corpus")
    yield fs, f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1", env
    server.stop()


def test_ingest_to_s3_and_export_back(s3, sample_raw, sample_dataset, tmp_path):
    fs, q, env = s3
    r = curate_proc("ingest", sample_raw, f"s3://corpus/raw?{q}", "--id-field", "doc_id", "--shard-size", "256", "-j", "2", env=env)
    assert r.returncode == 0, r.stderr.decode()
    names = sorted(fi.base_name for fi in fs.get_file_info(pafs.FileSelector("corpus/raw")))
    assert "_SUCCESS" in names and "_manifest.json" in names and "part-00009.parquet" in names
    assert not any(n.startswith(".") for n in names) and "_work" not in names

    r = curate_proc("info", f"s3://corpus/raw?{q}", "--json", env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout)["rows"] == 2539

    r = curate_proc("export", f"s3://corpus/raw?{q}", tmp_path / "back", "--format", "parquet", "-q", env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert read_rows(tmp_path / "back") == read_rows(sample_dataset)

    # A glob over the bucket, and a query string that is not mistaken for a glob.
    r = curate_proc("info", f"s3://corpus/raw/part-0000[0-4].parquet?{q}", "--json", env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout)["shards"] == 5


def test_missing_remote_path_is_a_clear_error(s3):
    _, q, env = s3
    r = curate_proc("info", f"s3://corpus/nothing-here?{q}", env=env)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "s3://corpus/nothing-here" in err and "Traceback" not in err


def test_unknown_scheme_is_a_clear_error(tmp_path):
    r = curate_proc("info", "nosuch://bucket/x")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "nosuch://bucket/x" in err and "hint:" in err and "Traceback" not in err
