"""k8s_apply's pure logic: manifest flattening, kubectl command lines, how kubectl diff's exit code is read."""
import json

import pytest

from ansible_collections.kubevirt.ops.plugins.module_utils import k8s_apply as ka

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubevirt"}}
SA = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "kubevirt"}}


def test_documents_flattens_yaml_streams_lists_and_kind_list():
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: kubevirt}\n---\n---\n" \
           "apiVersion: v1\nkind: List\nitems:\n" \
           "- {apiVersion: v1, kind: ServiceAccount, metadata: {name: a, namespace: kubevirt}}\n"
    assert ka.documents(text) == [NS, SA]
    assert ka.documents([NS, [SA]]) == [NS, SA]
    assert ka.documents(NS, "# only a comment\n") == [NS]
    assert ka.documents(["apiVersion: v1\nkind: Namespace\nmetadata: {name: kubevirt}", SA]) == [NS, SA]


@pytest.mark.parametrize("bad", [{"kind": "Namespace", "metadata": {"name": "x"}},
                                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {}}, "- 3\n"])
def test_documents_rejects_what_is_not_an_object(bad):
    with pytest.raises(ValueError):
        ka.documents(bad)


def test_stdin_is_one_list_in_order():
    body = json.loads(ka.stdin_for([NS, SA]))
    assert body["kind"] == "List" and body["items"] == [NS, SA]


def test_object_names():
    assert ka.object_names([NS, SA]) == ["Namespace/kubevirt", "ServiceAccount/kubevirt/a"]


def test_commands_use_server_side_apply_with_the_field_manager():
    base = ka.base_command("/bin/kubectl", "/k.conf", None)
    assert base == ["/bin/kubectl", "--kubeconfig", "/k.conf"]
    diff = ka.diff_command(base, "kubevirt-ops")
    assert diff[3:] == ["diff", "--server-side", "--field-manager=kubevirt-ops", "-f", "-", "--force-conflicts"]
    apply = ka.apply_command(base, "m", force_conflicts=False)
    assert apply[3:] == ["apply", "--server-side", "--field-manager=m", "-f", "-", "-o", "name"]


@pytest.mark.parametrize("rc,expected", [(0, (False, True)), (1, (True, True)), (2, (True, False))])
def test_diff_exit_codes(rc, expected):
    assert ka.interpret_diff(rc) == expected


def test_existing_names():
    assert ka.existing_names("namespace/kubevirt\n\nserviceaccount/a\n") == ["namespace/kubevirt", "serviceaccount/a"]
