// node --test: the create form's checks and the VirtualMachine it sends.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEMO_IMAGE, buildVM, userDataWithKey, validate } from "../src/vmform.js";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOk user@host";
const form = (extra = {}) => ({ name: "web-1", namespace: "default", image: DEMO_IMAGE, cpu: "2", memory: "256Mi",
  userData: "", sshKey: "", instancetype: "", ...extra });

test("a valid form gives a running VM with the containerDisk, CPU and memory", () => {
  const vm = buildVM(form());
  assert.equal(vm.metadata.name, "web-1");
  assert.equal(vm.spec.runStrategy, "Always");
  const spec = vm.spec.template.spec;
  assert.deepEqual(spec.domain.cpu, { cores: 2 });
  assert.deepEqual(spec.domain.memory, { guest: "256Mi" });
  assert.equal(spec.volumes[0].containerDisk.image, DEMO_IMAGE);
  assert.equal(spec.volumes.length, 1); // no cloud-init disk without user data
  assert.deepEqual(validate(form()), {});
});

test("an instancetype replaces CPU and memory", () => {
  const vm = buildVM(form({ instancetype: "u1.small" }));
  assert.deepEqual(vm.spec.instancetype, { name: "u1.small", kind: "VirtualMachineClusterInstancetype" });
  assert.equal(vm.spec.template.spec.domain.cpu, undefined);
});

test("each bad field gets its own message", () => {
  const errors = validate(form({ name: "Web_1", namespace: "", image: " ", cpu: "1.5", memory: "lots",
    sshKey: "not a key" }));
  assert.deepEqual(Object.keys(errors).sort(), ["cpu", "image", "memory", "name", "namespace", "sshKey"]);
  assert.match(errors.name, /lower-case/);
});

test("the SSH key lands where the guest reads it", () => {
  assert.equal(userDataWithKey("", KEY), `#cloud-config\nssh_authorized_keys:\n  - ${KEY}\n`);
  const merged = userDataWithKey("#cloud-config\nssh_authorized_keys:\n  - other\nhostname: x", KEY);
  assert.equal(merged.match(/^ssh_authorized_keys:/gm).length, 1); // one list, both keys
  assert.match(merged, new RegExp(`  - ${KEY}\\n  - other`));
  assert.match(userDataWithKey("#!/bin/sh\necho hi", KEY), /echo 'ssh-ed25519 .*' >> \/root\/\.ssh\/authorized_keys/);
  const vm = buildVM(form({ sshKey: KEY }));
  assert.equal(vm.spec.template.spec.volumes[1].cloudInitNoCloud.userData.startsWith("#cloud-config"), true);
});
