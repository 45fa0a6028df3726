"""Paths with characters outside the Basic Multilingual Plane (U+10000 and above).

Java ZooKeeper validates paths as UTF-16: such a character arrives as a surrogate
pair, and surrogates are refused, so every path check answers BADARGUMENTS. rzk must
answer the same everywhere a path is validated (create, sequential create, setData,
inside multi), and characters just inside the BMP stay accepted."""

import pytest
from kazoo.exceptions import BadArgumentsError, NoNodeError

EMOJI = "\U0001F600"


def test_create_outside_bmp_is_bad_arguments(zk, base):
    with pytest.raises(BadArgumentsError):
        zk.create(base + "/smile-" + EMOJI, b"x")
    # In an inner component the parent is looked up first, and it cannot exist.
    with pytest.raises(NoNodeError):
        zk.create(base + "/" + EMOJI + "/child", b"x")
    assert zk.get_children(base) == []


def test_sequential_create_outside_bmp_is_bad_arguments(zk, base):
    with pytest.raises(BadArgumentsError):
        zk.create(base + "/q-" + EMOJI + "-", b"x", sequence=True)
    assert zk.get_children(base) == []


def test_set_data_outside_bmp_is_bad_arguments(zk, base):
    with pytest.raises(BadArgumentsError):
        zk.set(base + "/smile-" + EMOJI, b"x")


def test_multi_with_a_path_outside_bmp_fails_whole(zk, base):
    t = zk.transaction()
    t.create(base + "/ok", b"1")
    t.create(base + "/smile-" + EMOJI, b"2")
    results = t.commit()
    assert isinstance(results[1], BadArgumentsError), results
    assert zk.get_children(base) == []


def test_last_bmp_characters_are_accepted(zk, base):
    name = base + "/cjk-\uf900-\uffef"
    assert zk.create(name, b"v") == name
    assert zk.get(name)[0] == b"v"
