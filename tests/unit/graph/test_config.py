from pathlib import Path

import pytest

from adapters.graph.config import CertificateCredential, GraphConfig, RetryPolicy
from adapters.loopback import is_loopback_http
from engine.errors import ConfigError


def test_secret_is_kept_out_of_repr() -> None:
    config = GraphConfig("t", "c", client_secret="s3cr3t-value")
    assert "s3cr3t-value" not in repr(config)


def test_exactly_one_credential() -> None:
    with pytest.raises(ConfigError):
        GraphConfig("t", "c")
    cert = CertificateCredential(Path("k.pem"), "AB" * 20)
    with pytest.raises(ConfigError):
        GraphConfig("t", "c", client_secret="s", certificate=cert)


@pytest.mark.parametrize(
    "url",
    ["http://login.example.net", "ftp://127.0.0.1", "https://h/x?y=1", "http://10.0.0.1:8080"],
)
def test_cleartext_or_odd_base_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        GraphConfig("t", "c", client_secret="s", graph_base_url=url)


def test_loopback_http_is_allowed() -> None:
    assert is_loopback_http("http://127.0.0.1:1234")
    assert is_loopback_http("http://[::1]:80")
    assert is_loopback_http("http://localhost:80")
    assert not is_loopback_http("https://127.0.0.1")
    GraphConfig("t", "c", client_secret="s", authority_base_url="http://127.0.0.1:9")


def test_thumbprint_must_be_sha1_hex() -> None:
    with pytest.raises(ConfigError):
        CertificateCredential(Path("k.pem"), "not-hex")
    CertificateCredential(Path("k.pem"), ":".join(["ab"] * 20))


def test_retry_policy_bounds() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(total_budget=0)
