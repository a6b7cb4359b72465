import pytest

from adapters.graph.msal_http import AuthorityHTTPError, MsalHttpClient, MsalResponse


def test_loopback_authority_is_presented_to_msal_as_https_and_routed_back() -> None:
    client = MsalHttpClient("http://127.0.0.1:4321", timeout=1)
    assert client.msal_authority_host == "https://127.0.0.1:4321"
    routed = client.route("https://127.0.0.1:4321/t/oauth2/v2.0/token?a=1", {"b": "2 3"})
    assert routed == "http://127.0.0.1:4321/t/oauth2/v2.0/token?a=1&b=2+3"


def test_production_authority_passes_through() -> None:
    client = MsalHttpClient("https://login.microsoftonline.com", timeout=1)
    url = "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration"
    assert client.route(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/t/oauth2/v2.0/token",  # another host: the secret stays home
        "http://127.0.0.1:4321/t/oauth2/v2.0/token",  # MSAL only ever asks for https
        "https://127.0.0.1:9999/t",  # another port
    ],
)
def test_other_hosts_are_refused(url: str) -> None:
    client = MsalHttpClient("http://127.0.0.1:4321", timeout=1)
    with pytest.raises(AuthorityHTTPError):
        client.route(url)


def test_response_is_requests_like() -> None:
    resp = MsalResponse(400, '{"error": "x"}', {"A": "b"})
    assert resp.json() == {"error": "x"}
    assert resp.headers == {"A": "b"}
    with pytest.raises(AuthorityHTTPError):
        resp.raise_for_status()
    MsalResponse(200, "", {}).raise_for_status()
