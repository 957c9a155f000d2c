"""The guest agent's raw answers -> upstream's shapes (what virtctl guestosinfo / userlist / fslist print)."""
from kubevirt_runtime.launcher import guest_agent

RAW = {
    "info": {"version": "7.2.19", "supported_commands": [{"name": "guest-ping", "enabled": True},
                                                         {"name": "guest-exec", "enabled": False}]},
    "os": {"name": "kubevirt-ops demo", "kernel-release": "6.1.0-44-amd64", "kernel-version": "#1 SMP",
           "machine": "x86_64", "id": "kubevirt-ops-demo", "pretty-name": "", "version-id": "1"},
    "hostname": {"host-name": "vm-demo"},
    "timezone": {"zone": "UTC", "offset": 0},
    "users": [{"user": "root", "login-time": 1700000000.5}],
    "fs": [{"name": "vda1", "mountpoint": "/boot", "type": "vfat", "used-bytes": 100, "total-bytes": 400,
            "disk": [{"bus-type": "virtio", "serial": "D1", "dev": "/dev/vda"}]},
           {"name": "sr0", "mountpoint": "/mnt", "type": "iso9660", "disk": []}],
}


def test_agent_info_has_upstreams_fields():
    info = guest_agent.agent_info(RAW)
    assert info["guestAgentVersion"] == "7.2.19"
    assert info["supportedCommands"] == [{"name": "guest-ping", "enabled": True},
                                         {"name": "guest-exec", "enabled": False}]
    assert info["hostname"] == "vm-demo" and info["timezone"] == "UTC, 0"
    assert info["os"] == {"name": "kubevirt-ops demo", "kernelRelease": "6.1.0-44-amd64",
                          "kernelVersion": "#1 SMP", "machine": "x86_64", "id": "kubevirt-ops-demo",
                          "versionId": "1"}  # empty values are left out
    assert info["userList"] == [{"userName": "root", "loginTime": 1700000000.5}]
    assert info["fsInfo"]["disks"][0] == {"diskName": "vda1", "mountPoint": "/boot", "fileSystemType": "vfat",
                                          "usedBytes": 100, "totalBytes": 400,
                                          "disk": [{"busType": "virtio", "serial": "D1"}]}


def test_missing_answers_give_empty_fields():
    info = guest_agent.agent_info({"info": {"version": "1"}, "os": None, "users": None, "fs": None})
    assert info == {"guestAgentVersion": "1", "supportedCommands": [], "hostname": "", "os": {},
                    "fsInfo": {"disks": []}}


def test_lists():
    assert guest_agent.user_list(RAW["users"]) == {"metadata": {}, "items": [{"userName": "root",
                                                                              "loginTime": 1700000000.5}]}
    assert guest_agent.user_list([]) == {"metadata": {}, "items": []}
    fs = guest_agent.filesystem_list(RAW["fs"])["items"]
    assert [f["mountPoint"] for f in fs] == ["/boot", "/mnt"]
    assert fs[1] == {"diskName": "sr0", "mountPoint": "/mnt", "fileSystemType": "iso9660", "usedBytes": 0,
                     "totalBytes": 0}
