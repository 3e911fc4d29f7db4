#!/usr/bin/env python3
"""Static checks of deploy/: the Kubernetes manifests parse and ask for what
`portmux run` needs, the same capabilities as the systemd unit, and the
Dockerfile installs the .deb on debian:12.

    deploy_check.py REPO_ROOT [PORTMUX_BINARY]

With PORTMUX_BINARY, every option the manifests pass to `portmux run` must
appear in `portmux run --help`. Prints one line per check; exit 1 on failure.
"""
import os
import re
import subprocess
import sys

import yaml

failures = 0


def check(ok, text):
    global failures
    print(("ok   " if ok else "FAIL ") + text)
    failures += not ok


def load_all(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def unit_capabilities(root):
    for line in open(os.path.join(root, "scripts/systemd/portmux@.service.in")):
        if line.startswith("CapabilityBoundingSet="):
            return set(line.split("=", 1)[1].split())
    return set()


def main():
    root = sys.argv[1]
    portmux = sys.argv[2] if len(sys.argv) > 2 else None
    kube = os.path.join(root, "deploy/kubernetes")
    docs = {}
    for name in sorted(os.listdir(kube)):
        if name.endswith(".yaml"):
            try:
                parsed = load_all(os.path.join(kube, name))
                check(True, "%s parses (%d document(s))" % (name, len(parsed)))
                for doc in parsed:
                    docs[(doc.get("kind"), name)] = doc
            except yaml.YAMLError as error:
                check(False, "%s does not parse: %s" % (name, error))
    wanted_caps = unit_capabilities(root)
    check(bool(wanted_caps), "the unit's CapabilityBoundingSet: %s" % " ".join(sorted(wanted_caps)))

    daemonset = docs.get(("DaemonSet", "daemonset.yaml"))
    configmap = docs.get(("ConfigMap", "configmap.yaml"))
    check(daemonset is not None, "daemonset.yaml holds a DaemonSet")
    check(configmap is not None, "configmap.yaml holds a ConfigMap")
    if not daemonset or not configmap:
        sys.exit(1)
    spec = daemonset["spec"]
    pod = spec["template"]["spec"]
    check(pod.get("hostNetwork") is True, "hostNetwork: true (XDP on the node's interface)")
    check(spec.get("updateStrategy", {}).get("type") == "RollingUpdate", "rolling updates")
    containers = pod["containers"]
    check(len(containers) == 1, "one container")
    container = containers[0]
    args = container.get("args", [])
    check(args[:1] == ["run"], "the container runs `portmux run` (args %s)" % args)
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    iface = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), "?"), args[1] if len(args) > 1 else "")
    check(bool(iface) and "?" not in iface and not iface.startswith("-"),
          "the interface argument resolves (%s)" % iface)

    def option(name):
        for i, arg in enumerate(args):
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
        return None

    check("--keep-on-exit" in args, "--keep-on-exit: a stopping pod leaves the attachment to the next")
    config = option("--config")
    check(config is not None, "--config given (%s)" % config)

    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if config:
        directory, key = os.path.split(config)
        mount = mounts.get(directory)
        check(mount is not None, "the config's directory %s is a volume mount" % directory)
        if mount:
            check("subPath" not in mount, "the ConfigMap is mounted as a directory, without subPath")
            volume = volumes.get(mount["name"], {})
            check(volume.get("configMap", {}).get("name") == configmap["metadata"]["name"],
                  "that volume is the ConfigMap %s" % configmap["metadata"]["name"])
        check(key in configmap.get("data", {}), "the ConfigMap has the key %s" % key)

    bpffs = mounts.get("/sys/fs/bpf")
    check(bpffs is not None and not bpffs.get("readOnly", False), "/sys/fs/bpf mounted read-write")
    if bpffs:
        host_path = volumes.get(bpffs["name"], {}).get("hostPath", {}).get("path")
        check(host_path == "/sys/fs/bpf", "from the host's /sys/fs/bpf (hostPath %s)" % host_path)

    security = container.get("securityContext", {})
    caps = security.get("capabilities", {})
    added = {"CAP_" + c for c in caps.get("add", [])}
    check(caps.get("drop") == ["ALL"], "capabilities: drop ALL")
    check(added == wanted_caps, "capabilities added = the unit's set (%s)" % " ".join(sorted(added)))
    check(security.get("privileged") in (None, False), "not privileged")
    check(security.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")

    listen = option("--metrics-listen")
    check(listen is not None, "--metrics-listen given (%s)" % listen)
    port = listen.rsplit(":", 1)[1] if listen else None
    ports = {p.get("name"): p for p in container.get("ports", [])}
    check(str(ports.get("metrics", {}).get("containerPort")) == port,
          "containerPort 'metrics' = the metrics port %s" % port)
    annotations = spec["template"]["metadata"].get("annotations", {})
    check(annotations.get("prometheus.io/scrape") == "true", "prometheus.io/scrape: \"true\"")
    check(annotations.get("prometheus.io/port") == port, "prometheus.io/port = %s" % port)
    check(annotations.get("prometheus.io/path") == "/metrics", "prometheus.io/path: /metrics")

    remove = docs.get(("Pod", "remove-from-node.yaml"))
    check(remove is not None, "remove-from-node.yaml holds a Pod")
    if remove:
        rc = remove["spec"]["containers"][0]
        check(rc.get("args", [])[:1] == ["detach"], "it runs `portmux detach`")
        rcaps = {"CAP_" + c for c in rc["securityContext"]["capabilities"].get("add", [])}
        check(rcaps <= wanted_caps, "with a subset of the unit's capabilities")
        check(any(m["mountPath"] == "/sys/fs/bpf" for m in rc.get("volumeMounts", [])),
              "and the host's /sys/fs/bpf")

    dockerfile = open(os.path.join(root, "deploy/Dockerfile")).read()
    check(re.search(r"^FROM debian:12\b", dockerfile, re.M) is not None, "Dockerfile: FROM debian:12")
    check(re.search(r"apt-get install .*portmux_\*\.deb", dockerfile) is not None,
          "Dockerfile installs the portmux .deb with apt-get")
    check('ENTRYPOINT ["/usr/sbin/portmux"]' in dockerfile, "Dockerfile: ENTRYPOINT portmux")

    if portmux:
        help_text = subprocess.run([portmux, "run", "--help"], capture_output=True, text=True).stdout
        for arg in args[1:]:
            if arg.startswith("--"):
                check(arg.split("=", 1)[0] in help_text, "`portmux run` knows %s" % arg)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
