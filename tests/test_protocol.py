"""The uwsgi packet codec (ugu/protocol.py): bytes in, bytes out."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ugu import protocol
from ugu.protocol import ProtocolError

keys = st.binary(min_size=1, max_size=40)
values = st.binary(max_size=80)
pairs_lists = st.lists(st.tuples(keys, values), max_size=12)


def test_encode_lays_out_header_and_vars_little_endian():
    packet = protocol.encode([(b"A", b"bc")], modifier1=5, modifier2=7)
    # modifier1, size 7 as u16le, modifier2; then u16le key length, key,
    # u16le value length, value.
    assert packet == b"\x05\x07\x00\x07" + b"\x01\x00A" + b"\x02\x00bc"


def test_sizes_over_255_are_little_endian():
    block = protocol.encode_vars([(b"K", b"v" * 300)])
    assert block[3:5] == (300).to_bytes(2, "little")
    header = protocol.encode([(b"K", b"v" * 300)])[:4]
    assert protocol.decode_header(header) == (0, len(block), 0)


def test_default_modifiers_are_wsgi():
    modifier1, _, modifier2 = protocol.decode_header(
        protocol.encode([(b"REQUEST_METHOD", b"GET")]))
    assert (modifier1, modifier2) == (protocol.MODIFIER_WSGI, 0)


def test_empty_values_are_allowed():
    block = protocol.encode_vars([(b"QUERY_STRING", b""), (b"X", b"1")])
    assert protocol.decode_vars(block) == [(b"QUERY_STRING", b""),
                                           (b"X", b"1")]


def test_repeated_keys_keep_their_order():
    pairs = [(b"X", b"1"), (b"Y", b"2"), (b"X", b"3")]
    assert protocol.decode_vars(protocol.encode_vars(pairs)) == pairs


def test_empty_key_is_refused_with_uwsgis_reason():
    with pytest.raises(ProtocolError, match="uwsgi key cannot be null"):
        protocol.decode_vars(b"\x00\x00\x01\x00x")


def test_truncated_header_is_refused():
    with pytest.raises(ProtocolError, match="truncated"):
        protocol.decode_header(b"\x00\x01\x00")


def test_truncated_value_is_refused():
    block = protocol.encode_vars([(b"KEY", b"value")])
    with pytest.raises(ProtocolError, match="invalid uwsgi request"):
        protocol.decode_vars(block[:-1])


def test_length_field_cut_in_half_is_refused():
    with pytest.raises(ProtocolError, match="invalid uwsgi request"):
        protocol.decode_vars(b"\x03")


def test_block_of_exactly_64k_minus_one_fits():
    value = b"v" * (protocol.MAX_BLOCK - 5)
    packet = protocol.encode([(b"K", value)])
    assert protocol.decode_header(packet)[1] == protocol.MAX_BLOCK


def test_block_over_64k_is_refused():
    with pytest.raises(ProtocolError, match="exceeds"):
        protocol.encode([(b"K", b"v" * protocol.MAX_BLOCK)])


def test_decode_accepts_memoryview_and_returns_bytes():
    block = protocol.encode_vars([(b"K", b"v")])
    [(key, value)] = protocol.decode_vars(memoryview(block))
    assert (type(key), type(value)) == (bytes, bytes)


@given(pairs_lists)
def test_vars_round_trip(pairs):
    assert protocol.decode_vars(protocol.encode_vars(pairs)) == pairs


@given(pairs_lists, st.integers(0, 7), st.integers(0, 255))
def test_packet_round_trip(pairs, modifier1, modifier2):
    packet = protocol.encode(pairs, modifier1, modifier2)
    m1, size, m2 = protocol.decode_header(packet)
    assert (m1, m2, size) == (modifier1, modifier2, len(packet) - 4)
    assert protocol.decode_vars(packet[4:]) == pairs


@given(pairs_lists.filter(bool), st.data())
def test_a_cut_block_is_a_prefix_or_an_error(pairs, data):
    block = protocol.encode_vars(pairs)
    cut = data.draw(st.integers(0, len(block) - 1))
    try:
        decoded = protocol.decode_vars(block[:cut])
    except ProtocolError:
        return
    # Only a cut between two pairs decodes, to the pairs before it.
    assert decoded == pairs[:len(decoded)]
    assert protocol.encode_vars(decoded) == block[:cut]


@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_protocol_error(data):
    try:
        pairs = protocol.decode_vars(data)
    except ProtocolError:
        return
    assert protocol.encode_vars(pairs) == data


def _both(block):
    """decode_vars and decode_text on one block: results or error texts."""
    try:
        pairs = protocol.decode_vars(block)
        expected = ({k.decode("latin-1"): v.decode("latin-1")
                     for k, v in pairs}, len(pairs))
    except ProtocolError as e:
        expected = (str(e), e.skip)
    try:
        got = protocol.decode_text(block)
    except ProtocolError as e:
        got = (str(e), e.skip)
    return expected, got


@given(st.binary(max_size=200))
def test_decode_text_agrees_with_decode_vars_on_any_bytes(data):
    expected, got = _both(data)
    assert got == expected


@given(pairs_lists, st.data())
def test_decode_text_agrees_with_decode_vars_on_cut_blocks(pairs, data):
    block = protocol.encode_vars(pairs)
    cut = data.draw(st.integers(0, len(block)))
    expected, got = _both(block[:cut])
    assert got == expected
