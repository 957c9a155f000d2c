from kubevirt_runtime.machinery.own_writes import OwnWrites


def test_a_version_superseded_by_an_own_write_waits_until_the_cache_moves_on():
    own = OwnWrites()
    assert not own.superseded("ns/a", "5")
    own.wrote("ns/a", "5")
    own.wrote("ns/a", "6")  # a second write before the cache caught up
    assert own.superseded("ns/a", "5") and own.superseded("ns/a", "6")
    assert not own.superseded("ns/b", "5")
    assert not own.superseded("ns/a", "7")  # the cache caught up: nothing is remembered any more
    assert not own.superseded("ns/a", "5")
    own.wrote("ns/a", "8")
    own.forget("ns/a")
    assert not own.superseded("ns/a", "8")
