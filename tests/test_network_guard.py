import socket

import pytest

from tests.conftest import InternetAccessError


def test_connecting_to_a_public_address_fails() -> None:
    with socket.socket() as sock, pytest.raises(InternetAccessError):
        sock.connect(("1.1.1.1", 443))


def test_resolving_a_public_name_fails() -> None:
    with pytest.raises(InternetAccessError):
        socket.getaddrinfo("example.com", 443)


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
