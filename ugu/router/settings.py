"""The router's tunables, read from the Config once at start-up."""

import socket
from dataclasses import dataclass

from ugu.http.vars import parse_var
from ugu.options.errors import ConfigError

DEFAULT_READ = 65536
DEFAULT_TIMEOUT = 60


@dataclass(frozen=True)
class Settings:
    keepalive: bool
    # Seconds a kept-alive connection may wait for its next request.
    idle_timeout: int
    # Seconds of silence allowed from a backend, and from a client sending
    # its body or reading the response.
    timeout: int
    connect_timeout: int
    headers_timeout: int
    auto_gzip: bool
    modifier1: int
    modifier2: int
    extra_vars: tuple
    # Bytes over which a request that waits for `100 Continue` is refused
    # (`http-manage-expect = N`, N > 1); 0: no limit.
    expect_limit: int
    # Bytes read from a client or backend at a time.
    read_size: int
    # Whether a client certificate also reaches the app as PEM (HTTPS_CC).
    https_export_cert: bool
    # Whether a websocket's request opens a raw session (ugu.router.tunnel).
    websockets: bool
    # Whether a PROXY line may come before a connection's first request.
    proxy_protocol: bool
    # Seconds a subscribed node stays without an announce
    # (ugu.router.subscriptions), and the key of the pool that serves a
    # Host without one (bytes, or None).
    subscription_tolerance: int = 17
    fallback_key: bytes | None = None
    # subscription-algo and subscription-dotsplit.
    subscription_algo: str | None = None
    dotsplit: bool = False
    # subscriptions-use-credentials and subscriptions-credentials-check.
    use_credentials: bool = False
    credentials_check: tuple = ()
    # subscriptions-sign-check: (DIGEST:DIR, tolerance, uids skipped).
    sign_check: tuple | None = None
    # The stats server's address (http-stats), or None.
    stats: str | None = None
    # Whether the nodes are http-to's (in the stats as static_nodes).
    static_nodes: bool = False
    # http-use-pattern and http-use-base: the node is the Host's.
    pattern: str | None = None
    base: str | None = None
    # No line for a node that refuses a connection (http-quiet).
    quiet: bool = False
    # Seconds an http-to node that failed waits (http-gracetime); 0:
    # the router's own back-off (ugu.router.backends).
    gracetime: int = 0
    # http-raw-body: every request opens a raw session
    # (ugu.router.tunnel), its body relayed as the client sends it.
    raw_body: bool = False
    # http-chunked-input: a chunked request opens such a session, so that
    # the app reads its chunks (uwsgi.chunked_read) as the client sends
    # them.
    chunked_input: bool = False
    # SERVER_NAME is the request's Host (http-server-name-as-http-host).
    host_as_server_name: bool = False
    # Subscription servers each announce is passed on to.
    resubscribe: tuple = ()
    # Nodes tried when a request's own fail (http-fallback).
    fallback: tuple = ()
    # No connection accepted while no node is subscribed (http-cheap).
    cheap: bool = False
    # The IPv4 addresses whose clients send a stud prefix
    # (http-stud-prefix; ugu.router.stud).
    stud_prefix: frozenset = frozenset()
    # A SOURCE request opens a raw session (http-manage-source).
    manage_source: bool = False

    @classmethod
    def from_config(cls, config):
        from ugu.subscription import sign_check
        # As in uWSGI, 0 (or unset) means the default: 60 s, and the
        # connect and headers timeouts follow http-timeout.
        timeout = config["http-timeout"] or DEFAULT_TIMEOUT
        keepalive = config["http-keepalive"]
        manage = config["http-manage-expect"]
        return cls(
            keepalive=keepalive > 0,
            # `http-keepalive = N` with N > 1 is uWSGI's idle timeout.
            idle_timeout=keepalive if keepalive > 1 else timeout,
            timeout=timeout,
            connect_timeout=config["http-connect-timeout"] or timeout,
            headers_timeout=config["http-headers-timeout"] or timeout,
            auto_gzip=config["http-auto-gzip"],
            # uWSGI keeps only the low byte, the packet's field: 300 is 44.
            modifier1=config["http-modifier1"] % 256,
            modifier2=config["http-modifier2"] % 256,
            extra_vars=tuple(map(parse_var, config["http-var"])),
            # As in uWSGI, 1 (or `true`) sets no limit.
            expect_limit=manage if manage > 1 else 0,
            # As in uWSGI, 0 means the default size.
            read_size=max(config["http-buffer-size"], 0) or DEFAULT_READ,
            https_export_cert=config["https-export-cert"],
            websockets=config["http-websockets"],
            raw_body=config["http-raw-body"],
            chunked_input=config["http-chunked-input"],
            proxy_protocol=(config["enable-proxy-protocol"]
                            or config["http-enable-proxy-protocol"]),
            subscription_tolerance=config["subscription-tolerance"],
            subscription_algo=config["subscription-algo"],
            dotsplit=config["subscription-dotsplit"],
            use_credentials=config["subscriptions-use-credentials"],
            credentials_check=tuple(config["subscriptions-credentials-check"]),
            sign_check=sign_check(config),
            fallback_key=_bytes(config["http-subscription-fallback-key"]),
            stats=config["http-stats"] or None,
            static_nodes=bool(config["http-to"]),
            pattern=config["http-use-pattern"],
            base=config["http-use-base"],
            quiet=config["http-quiet"],
            gracetime=max(config["http-gracetime"], 0),
            host_as_server_name=config["http-server-name-as-http-host"],
            resubscribe=tuple(config["http-resubscribe"]),
            fallback=tuple(config["http-fallback"]),
            cheap=config["http-cheap"],
            stud_prefix=_stud_prefix(config["http-stud-prefix"]),
            manage_source=config["http-manage-source"])


def _stud_prefix(addresses):
    """The addresses of http-stud-prefix, as Python writes them."""
    found = set()
    for address in addresses:
        try:
            found.add(socket.inet_ntoa(socket.inet_pton(socket.AF_INET,
                                                        address)))
        except OSError:
            raise ConfigError(f"'{address}' is no IPv4 address: uWSGI's "
                              f"router reads a stud prefix from IPv4 "
                              f"clients only", option="http-stud-prefix") \
                from None
    return frozenset(found)


def _bytes(text):
    return None if not text else text.encode()
