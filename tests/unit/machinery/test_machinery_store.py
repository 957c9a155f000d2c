from kubevirt_runtime.machinery.expectations import ControllerExpectations
from kubevirt_runtime.machinery.store import Store, label_index, object_key, owner_uid_index, split_key


def pod(name, created_by, ns="default", rv="1"):
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv,
                         "labels": {"kubevirt.io/created-by": created_by},
                         "ownerReferences": [{"uid": created_by}]}}


def test_keys():
    assert object_key(pod("a", "u")) == "default/a"
    assert object_key({"metadata": {"name": "node"}}) == "node"
    assert split_key("default/a") == ("default", "a")
    assert split_key("node") == (None, "node")


def test_indexes_follow_updates_and_deletes():
    store = Store({"created-by": label_index("kubevirt.io/created-by"), "owner": owner_uid_index})
    store.upsert(pod("a", "u1"))
    store.upsert(pod("b", "u1"))
    assert {object_key(p) for p in store.by_index("created-by", "u1")} == {"default/a", "default/b"}
    store.upsert(pod("b", "u2", rv="2"))
    assert [object_key(p) for p in store.by_index("created-by", "u1")] == ["default/a"]
    assert [object_key(p) for p in store.by_index("owner", "u2")] == ["default/b"]
    store.delete("default/a")
    assert store.by_index("created-by", "u1") == []
    assert len(store) == 1


def test_replace_reports_differences():
    store = Store()
    store.upsert(pod("a", "u"))
    store.upsert(pod("b", "u"))
    added, updated, deleted = store.replace([pod("b", "u", rv="2"), pod("c", "u")])
    assert [object_key(o) for o in added] == ["default/c"]
    assert [object_key(n) for _, n in updated] == ["default/b"]
    assert [object_key(o) for o in deleted] == ["default/a"]


def test_expectations():
    now = [0.0]
    exp = ControllerExpectations(ttl=300, clock=lambda: now[0])
    assert exp.satisfied("k")
    exp.expect_creations("k", 1)
    assert not exp.satisfied("k")
    exp.creation_observed("k")
    assert exp.satisfied("k")
    exp.expect_deletions("k", ["uid1"])
    exp.expect_deletions("k", ["uid1"])  # same uid counted once
    assert exp.pending("k") == (0, 1)
    exp.deletion_observed("k", "other")
    assert not exp.satisfied("k")
    exp.deletion_observed("k", "uid1")
    assert exp.satisfied("k")
    exp.expect_creations("k", 1)
    now[0] = 301
    assert exp.satisfied("k")  # expired: a lost event must not block the controller forever
    exp.lower("k", adds=1)
    assert exp.pending("k") == (0, 0)
