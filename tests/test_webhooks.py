"""Webhooks (service/jobs/webhooks.py): Standard Webhooks signing, the SSRF guard, delivery, retries.

No real DNS: names go through fake resolvers; numeric hosts and `localhost` go through the real
getaddrinfo, which parses them (and reads /etc/hosts) without the network. Deliveries go to a
real HTTP receiver on 127.0.0.1 that each test starts and stops.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from service import __version__
from service.errors import InvalidRequest
from service.jobs import webhooks
from service.jobs.webhooks import (
    RETRY_SCHEDULE_S,
    Attempt,
    CallbackRefused,
    WebhookVerificationError,
    check_callback_url,
    headers_for,
    new_secret,
    next_attempt_delay,
    post_webhook,
    sign,
    verify,
)

NOW = 1_760_000_000
BODY = b'{"event":"job.completed","job_id":"job_1"}'

# The test vector of the Standard Webhooks reference implementations.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def fake_resolver(table: dict[str, list[str]], calls: list | None = None):
    """A getaddrinfo stand-in: host -> addresses; unknown hosts raise gaierror."""

    def resolve(host, port, *args, **kwargs):
        if calls is not None:
            calls.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for address in table[host]:
            if ":" in address:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out

    return resolve


# --- signing --------------------------------------------------------------------------------


def test_new_secret_format():
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_"):], validate=True)) == 24
    assert new_secret() != secret


def test_sign_matches_spec_test_vector():
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIG


def test_sign_verify_round_trip():
    secret = new_secret()
    headers = headers_for(secret, "msg_1", NOW, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"] == sign(secret, "msg_1", NOW, BODY)
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"Atelier-Webhooks/{__version__}"
    verify(secret, headers, BODY, now=NOW)
    verify(secret, {k.upper(): v for k, v in headers.items()}, BODY, now=NOW + 299)  # names are case-insensitive


def test_compatible_with_reference_library_both_ways():
    standardwebhooks = pytest.importorskip("standardwebhooks")
    secret = new_secret()
    ts = int(datetime.now(tz=timezone.utc).timestamp())  # the library checks against the wall clock
    library = standardwebhooks.Webhook(secret)
    # Ours -> library.
    assert library.verify(BODY, headers_for(secret, "msg_lib", ts, BODY)) == json.loads(BODY)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        library.verify(BODY + b" ", headers_for(secret, "msg_lib", ts, BODY))
    # Library -> ours.
    theirs = library.sign("msg_lib", datetime.fromtimestamp(ts, tz=timezone.utc), BODY.decode())
    assert theirs == sign(secret, "msg_lib", ts, BODY)
    verify(secret, {"webhook-id": "msg_lib", "webhook-timestamp": str(ts), "webhook-signature": theirs}, BODY, now=ts)


@pytest.mark.parametrize("case", ["tampered_body", "wrong_secret", "stale", "future", "wrong_id",
                                  "missing_id", "missing_timestamp", "missing_signature", "bad_timestamp",
                                  "v2_only", "garbage_signature"])
def test_verify_rejects(case):
    secret = new_secret()
    headers = headers_for(secret, "msg_1", NOW, BODY)
    body, key, now = BODY, secret, NOW
    if case == "tampered_body":
        body = BODY.replace(b"job_1", b"job_2")
    elif case == "wrong_secret":
        key = new_secret()
    elif case == "stale":
        now = NOW + 301
    elif case == "future":
        now = NOW - 301
    elif case == "wrong_id":
        headers["webhook-id"] = "msg_2"
    elif case.startswith("missing_"):
        del headers["webhook-" + case.removeprefix("missing_")]
    elif case == "bad_timestamp":
        headers["webhook-timestamp"] = f"{NOW}.0"
    elif case == "v2_only":
        headers["webhook-signature"] = "v2," + headers["webhook-signature"].split(",", 1)[1]
    elif case == "garbage_signature":
        headers["webhook-signature"] = "v1 v1,@@@ nonsense v1,"
    with pytest.raises(WebhookVerificationError):
        verify(key, headers, body, now=now)


def test_verify_tolerance_is_configurable():
    secret = new_secret()
    headers = headers_for(secret, "msg_1", NOW, BODY)
    verify(secret, headers, BODY, now=NOW + 60, tolerance_s=60)
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, BODY, now=NOW + 61, tolerance_s=60)


def test_verify_accepts_one_valid_among_several_signatures():
    old, new = new_secret(), new_secret()
    headers = headers_for(new, "msg_1", NOW, BODY)
    headers["webhook-signature"] = " ".join([
        "v1a,abc", sign(old, "msg_1", NOW, BODY), "v1,not-base64!", headers["webhook-signature"]])
    verify(new, headers, BODY, now=NOW)
    verify(old, headers, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(new_secret(), headers, BODY, now=NOW)


def test_malformed_secret_error_never_contains_the_secret():
    bad = "whsec_not*base64*" + "x" * 10
    with pytest.raises(WebhookVerificationError) as info:
        verify(bad, headers_for(new_secret(), "m", NOW, BODY), BODY, now=NOW)
    assert bad not in str(info.value) and "not*base64" not in str(info.value)


# --- the SSRF guard -------------------------------------------------------------------------

PUBLIC = fake_resolver({"example.com": ["93.184.215.14"], "v6.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://10.0.0.5/hook",
    "https://192.168.1.1/hook",
    "https://172.16.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",      # IPv4-mapped 169.254.169.254
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://2130706433/hook",               # 127.0.0.1 as one decimal number
    "https://0x7f.1/hook",                   # 127.0.0.1 in hex shorthand
    "https://017700000001/hook",             # 127.0.0.1 in octal
    "https://0.0.0.0/hook",
    "https://100.64.0.1/hook",               # shared address space (carrier-grade NAT)
    "https://224.0.0.1/hook",                # multicast
    "https://240.0.0.1/hook",                # reserved
    "https://[2002:7f00:1::1]/hook",         # 6to4 of 127.0.0.1
    "https://[64:ff9b::a00:5]/hook",         # NAT64 of 10.0.0.5
])
def test_guard_refuses_non_public_addresses(url):
    with pytest.raises(CallbackRefused) as info:
        check_callback_url(url, allow_private=False)
    assert "resolves to a" in info.value.message and "publicly routable" in info.value.message


@pytest.mark.parametrize("url, problem", [
    ("ftp://example.com/hook", "https"),
    ("file:///etc/passwd", "https"),
    ("http://example.com/hook", "plain http"),
    ("https://user:pw@example.com/hook", "user name or password"),
    ("https://user@example.com/hook", "user name or password"),
    ("https:///hook", "no host"),
    ("https://example.com/" + "a" * 2048, "longer than 2048"),
    ("https://example.com/ho ok", "whitespace"),
    ("https://example.com:99999/hook", "not a valid URL"),
    ("https://nowhere.invalid/hook", "does not resolve"),
])
def test_guard_refuses_bad_urls(url, problem):
    calls: list = []
    resolve = fake_resolver({"example.com": ["93.184.215.14"]}, calls)
    with pytest.raises(CallbackRefused) as info:
        check_callback_url(url, allow_private=False, resolve=resolve)
    assert problem in info.value.message
    if problem != "does not resolve":
        assert calls == []  # refused before any lookup


def test_refusal_is_a_422_on_webhook_url():
    with pytest.raises(CallbackRefused) as info:
        check_callback_url("ftp://example.com/", allow_private=False)
    err = info.value
    assert isinstance(err, InvalidRequest)
    assert (err.status, err.code, err.field) == (422, "callback_url_refused", "webhook_url")


def test_guard_refuses_a_name_resolving_to_any_private_address():
    resolve = fake_resolver({"evil.example": ["93.184.215.14", "10.1.2.3"]})
    with pytest.raises(CallbackRefused) as info:
        check_callback_url("https://evil.example/hook", allow_private=False, resolve=resolve)
    assert "private" in info.value.message
    assert "10.1.2.3" not in info.value.message  # internal addresses are not echoed to the caller
    only_private = fake_resolver({"internal.example": ["192.168.0.7"]})
    with pytest.raises(CallbackRefused):
        check_callback_url("https://internal.example/hook", allow_private=False, resolve=only_private)


def test_guard_accepts_public_hosts():
    url = "https://example.com/hook?tenant=t1"
    assert check_callback_url(url, allow_private=False, resolve=PUBLIC) == url
    assert check_callback_url("https://v6.example.com:8443/h", allow_private=False, resolve=PUBLIC)
    assert check_callback_url("HTTPS://Example.COM/hook", allow_private=False, resolve=PUBLIC)


def test_guard_allow_private_permits_loopback_http():
    assert check_callback_url("http://127.0.0.1:8080/", allow_private=True) == "http://127.0.0.1:8080/"
    with pytest.raises(CallbackRefused):  # but the other checks still apply
        check_callback_url("ftp://127.0.0.1/", allow_private=True)
    with pytest.raises(CallbackRefused):
        check_callback_url("http://u:p@127.0.0.1/", allow_private=True)


# --- delivery -------------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1 that records requests and checks their signatures."""

    def __init__(self, secret: str, tls: ssl.SSLContext | None = None):
        self.secret = secret
        self.status = 204
        self.location: str | None = None
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    # The message was signed "now"; a receiver uses the wall clock.
                    verify(receiver.secret, dict(self.headers.items()), body)
                    verified = True
                except WebhookVerificationError:
                    verified = False
                receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": body, "verified": verified})
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST  # noqa: N815 - a followed redirect would show up here

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def receiver():
    r = Receiver(new_secret())
    yield r
    r.stop()


PAYLOAD = {"type": "job.completed", "job_id": "job_1", "items": 3, "data": {"b": 1, "a": [1, 2]}}


def test_post_webhook_delivers_a_verifiable_message(receiver):
    attempt = post_webhook(receiver.url + "/hooks/atelier?x=1", receiver.secret, "msg_ok", PAYLOAD,
                           allow_private=True, timeout_s=5)
    assert attempt.ok and attempt.status_code == 204 and attempt.error is None
    assert attempt.duration_ms > 0
    [seen] = receiver.requests
    assert seen["verified"] is True
    assert seen["path"] == "/hooks/atelier?x=1"
    assert seen["body"] == json.dumps(PAYLOAD, separators=(",", ":"), sort_keys=True).encode()
    headers = seen["headers"]
    assert headers["webhook-id"] == "msg_ok"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"Atelier-Webhooks/{__version__}"
    assert headers["host"] == f"127.0.0.1:{receiver.port}"


def test_post_webhook_uses_the_given_timestamp(receiver):
    attempt = post_webhook(receiver.url + "/", receiver.secret, "msg_ts", PAYLOAD, allow_private=True, now=NOW)
    assert attempt.ok
    [seen] = receiver.requests
    assert seen["headers"]["webhook-timestamp"] == str(NOW)
    assert seen["verified"] is False  # stale against the wall clock...
    verify(receiver.secret, seen["headers"], seen["body"], now=NOW)  # ...and valid at its own time


def test_post_webhook_server_error(receiver):
    receiver.status = 500
    attempt = post_webhook(receiver.url + "/", receiver.secret, "msg_500", PAYLOAD, allow_private=True)
    assert attempt == Attempt(ok=False, status_code=500, error=None, duration_ms=attempt.duration_ms)
    assert len(receiver.requests) == 1


def test_post_webhook_does_not_follow_redirects(receiver):
    receiver.status = 302
    receiver.location = receiver.url + "/elsewhere"
    attempt = post_webhook(receiver.url + "/first", receiver.secret, "msg_302", PAYLOAD, allow_private=True)
    assert not attempt.ok and attempt.status_code == 302
    assert [r["path"] for r in receiver.requests] == ["/first"]


def test_post_webhook_dead_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = sock.getsockname()[1]
        secret = new_secret()
        attempt = post_webhook(f"http://127.0.0.1:{port}/", secret, "msg_dead", PAYLOAD,
                               allow_private=True, timeout_s=2)
    assert not attempt.ok and attempt.status_code is None
    assert attempt.error and attempt.error.startswith("ConnectError")
    assert secret not in attempt.error


def test_post_webhook_refused_url_never_reaches_the_receiver(receiver):
    attempt = post_webhook(receiver.url + "/", receiver.secret, "msg_ssrf", PAYLOAD, allow_private=False)
    assert not attempt.ok and attempt.status_code is None
    assert attempt.error.startswith("CallbackRefused: ")
    assert receiver.requests == []
    with_https = f"https://127.0.0.1:{receiver.port}/"
    attempt = post_webhook(with_https, receiver.secret, "msg_ssrf2", PAYLOAD, allow_private=False)
    assert attempt.error.startswith("CallbackRefused: ") and "loopback" in attempt.error
    assert receiver.requests == []


def test_post_webhook_never_raises_and_never_leaks_the_secret(receiver):
    bad_secret = "whsec_%%%secret-material%%%"
    attempt = post_webhook(receiver.url + "/", bad_secret, "msg_bad", PAYLOAD, allow_private=True)
    assert not attempt.ok and attempt.status_code is None and attempt.error.startswith("ValueError: ")
    assert "secret-material" not in attempt.error
    attempt = post_webhook(receiver.url + "/", receiver.secret, "msg_bad", {"x": object()}, allow_private=True)
    assert not attempt.ok and attempt.error.startswith("TypeError: ")
    assert receiver.requests == []


def test_post_webhook_pins_the_single_resolved_address(receiver):
    calls: list = []
    resolve = fake_resolver({"hooks.test": ["127.0.0.1"]}, calls)
    attempt = post_webhook(f"http://hooks.test:{receiver.port}/cb", receiver.secret, "msg_pin", PAYLOAD,
                           allow_private=True, resolve=resolve)
    assert attempt.ok, attempt
    assert calls == [("hooks.test", receiver.port)]  # resolved exactly once, and that answer was used
    [seen] = receiver.requests
    assert seen["headers"]["host"] == f"hooks.test:{receiver.port}"
    assert seen["verified"] is True


def test_post_webhook_rebinding_answer_is_checked_before_connecting(receiver):
    # A name whose (only) answer at send time is loopback is refused, even if it was public when saved.
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])
    table: dict[str, list[str]] = {}

    def resolve(host, port, *args, **kwargs):
        table["rebind.example"] = next(answers)
        return fake_resolver(table)(host, port)

    assert check_callback_url("https://rebind.example/", allow_private=False, resolve=resolve)
    attempt = post_webhook(f"https://rebind.example:{receiver.port}/", receiver.secret, "msg_rb", PAYLOAD,
                           allow_private=False, resolve=resolve)
    assert not attempt.ok and attempt.error.startswith("CallbackRefused: ")
    assert receiver.requests == []


@pytest.mark.parametrize("address, expected_host", [("93.184.215.14", "93.184.215.14"),
                                                    ("2606:2800:21f:cb07:6820:80da:af6b:8b2c",
                                                     "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]")])
def test_post_webhook_https_request_is_pinned_with_sni(monkeypatch, address, expected_host):
    """The https request goes to the IP, with the real name as Host and as TLS SNI (no network used)."""
    sent: list[httpx.Request] = []
    real_client = httpx.Client

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    def client(**kwargs):
        assert kwargs["follow_redirects"] is False and kwargs["trust_env"] is False
        return real_client(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(webhooks.httpx, "Client", client)
    resolve = fake_resolver({"shop.example": [address]})
    secret = new_secret()
    attempt = post_webhook("https://shop.example/webhooks/atelier?id=7", secret, "msg_tls", PAYLOAD,
                           allow_private=False, resolve=resolve, now=NOW)
    assert attempt.ok and attempt.status_code == 200
    [request] = sent
    assert request.url.scheme == "https"
    assert request.url.netloc.decode() == expected_host
    assert request.url.raw_path == b"/webhooks/atelier?id=7"
    assert request.headers["host"] == "shop.example"
    assert request.extensions["sni_hostname"] == "shop.example"
    verify(secret, request.headers, request.content, now=NOW)


def _self_signed(tmp_path, name: str):
    """A self-signed certificate for DNS name `name` (no IP address in it): (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(tz=timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize("cert_name, ok", [("hooks.test", True), ("other.test", False)])
def test_post_webhook_https_checks_the_certificate_against_the_real_name(tmp_path, monkeypatch, cert_name, ok):
    """A real TLS receiver on 127.0.0.1: the pinned connection verifies the certificate for the
    URL's name (SNI), not for the IP it connects to; a certificate for another name fails."""
    cert_path, key_path = _self_signed(tmp_path, cert_name)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_path, key_path)
    client_tls = ssl.create_default_context(cafile=str(cert_path))  # trust only the test certificate
    real_client = httpx.Client
    monkeypatch.setattr(webhooks.httpx, "Client", lambda **kwargs: real_client(verify=client_tls, **kwargs))
    tls_receiver = Receiver(new_secret(), tls=server_tls)
    try:
        resolve = fake_resolver({"hooks.test": ["127.0.0.1"]})
        attempt = post_webhook(f"https://hooks.test:{tls_receiver.port}/cb", tls_receiver.secret, "msg_tls",
                               PAYLOAD, allow_private=True, resolve=resolve, timeout_s=5)
    finally:
        tls_receiver.stop()
    if ok:
        assert attempt.ok, attempt
        [seen] = tls_receiver.requests
        assert seen["verified"] is True and seen["headers"]["host"] == f"hooks.test:{tls_receiver.port}"
    else:
        assert not attempt.ok and attempt.status_code is None
        assert attempt.error.startswith("ConnectError") and "CERTIFICATE_VERIFY_FAILED" in attempt.error
        assert tls_receiver.requests == []


# --- retries --------------------------------------------------------------------------------


def test_retry_schedule():
    assert len(RETRY_SCHEDULE_S) == 5
    assert [next_attempt_delay(n) for n in range(5)] == [0, 30, 120, 480, 1200]
    assert next_attempt_delay(5) is None
    assert next_attempt_delay(9) is None
    assert 25 * 60 <= sum(RETRY_SCHEDULE_S) <= 35 * 60
    assert list(RETRY_SCHEDULE_S) == sorted(RETRY_SCHEDULE_S)
    assert next_attempt_delay(1, schedule=(0, 5)) == 5 and next_attempt_delay(2, schedule=(0, 5)) is None
    with pytest.raises(ValueError):
        next_attempt_delay(-1)
