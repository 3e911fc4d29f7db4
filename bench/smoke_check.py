#!/usr/bin/env python3
"""bench/run.sh --smoke's verdict: correctness of what the benchmark ran, no timing.

Fails (exit 1, naming every failed check) unless, in --work's live.jsonl:
  - every UDP trial of a lossless system (direct3, seed, portmux, nftables)
    delivered exactly what its sender sent, and to each of the three backend
    ports; nginx drops by design, so its trials must only exist and deliver
    something; in every client-scaling trial, both alternating systems
    (portmux and direct3) did the same over their timed slices, and every
    slice sent something;
  - every relay stream trial moved all its bytes without a failed stream,
    every request/response and connect trial completed all its requests
    without a failure;
  - portmux's stream router counted exactly the bytes sent through it;
  - every system named in --relay-systems and every part in --parts ran, and
    prog.json has the rows the page is made from;
  - the page (--md) was written.
Standard library only.
"""
import argparse
import json
import os
import sys

LOSSLESS = {"direct3", "seed", "portmux", "nft"}
PROG_ROWS = ["xdp_pass", "aya_demo", "tc_pass", "xdp_pass_single_shot"]
PORTMUX_ROWS = ["udp", "udp_not_a_frontend", "tc_not_a_reply", "tc_reply", "tcp_new_flow_single_shot"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--relay-bytes", type=int, required=True)
    ap.add_argument("--parts", default="prog,udp,scale,relay")
    ap.add_argument("--relay-systems", default="")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    errors = []
    rows = []
    path = os.path.join(a.work, "live.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]

    udp = [r for r in rows if r.get("kind") == "udp"]
    scale = [r for r in rows if r.get("kind") == "scale"]
    if "udp" in parts and not udp:
        errors.append("part udp: no trial recorded")
    if "scale" in parts and not scale:
        errors.append("part scale: no trial recorded")
    for r in scale:
        for tag, system in r["systems"].items():
            name = f"scale {system} ({r['clients']} clients)"
            sent = r["sender"][tag]["sent"]
            got = r["sink"]["per_tag"][tag]
            if sent <= 0:
                errors.append(f"{name}: sent nothing")
            elif got["received"] != sent:
                errors.append(f"{name}: {got['received']} of {sent} datagrams delivered")
            if min(got["per_port"].values(), default=0) == 0:
                errors.append(f"{name}: not every backend received datagrams: {got['per_port']}")
        if any(s["sent"] <= 0 for s in r["sender"]["slices"]):
            errors.append(f"scale ({r['clients']} clients): a slice sent nothing")
    for r in udp:
        name = f"{r['part']} {r['path']} {r['system']} ({r['clients']} clients)"
        sent, got = r["sender"]["sent"], r["sink"]["received"]
        per_port = r["sink"]["per_port"]
        if sent <= 0:
            errors.append(f"{name}: sent nothing")
        elif r["system"] in LOSSLESS:
            if got != sent:
                errors.append(f"{name}: {got} of {sent} datagrams delivered")
            if sorted(per_port) != ["9876", "9877", "9878"] or min(per_port.values()) == 0:
                errors.append(f"{name}: not every backend received datagrams: {per_port}")
        elif got <= 0:
            errors.append(f"{name}: nothing delivered")

    relay = [r for r in rows if r.get("kind") == "relay"]
    if "relay" in parts:
        for system in a.relay_systems.split():
            for test in ("stream", "rr", "connect"):
                if not any(r["system"] == system and r["test"] == test for r in relay):
                    errors.append(f"relay {system}: no {test} trial recorded")
    for r in relay:
        res = r["result"]
        name = f"relay {r['path']} {r['system']} {r['test']}"
        if r["test"] == "stream":
            name += f" ({r['streams']} streams)"
            if res.get("failed") != 0 or res.get("bytes") != a.relay_bytes:
                errors.append(f"{name}: {res.get('bytes')} of {a.relay_bytes} bytes, {res.get('failed')} failed")
            counted = r.get("router_bytes")
            if r["system"] == "portmux":
                if not counted or counted["bytes_to_backend"] != a.relay_bytes:
                    errors.append(f"{name}: the router counted {counted} bytes to the backend, "
                                  f"not {a.relay_bytes}")
        elif res.get("failures") != 0 or not res.get("completed"):
            errors.append(f"{name}: {res.get('completed')} completed, {res.get('failures')} failures")

    if "prog" in parts:
        try:
            with open(os.path.join(a.work, "prog.json")) as f:
                prog = json.load(f)
            have = {r["name"] for r in prog["baseline"]["rows"]} | {r["name"] for r in prog["portmux"]["rows"]}
            for name in PROG_ROWS + PORTMUX_ROWS:
                if name not in have:
                    errors.append(f"prog.json: no row {name}")
        except (OSError, KeyError, ValueError) as e:
            errors.append(f"prog.json: {e}")

    if not os.path.exists(a.md) or os.path.getsize(a.md) == 0:
        errors.append(f"{a.md}: not written")

    trials = len(udp) + len(scale) + len(relay)
    if errors:
        for e in errors:
            print(f"bench smoke: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"bench smoke: ok ({trials} trials, every datagram and byte accounted for)", file=sys.stderr)


if __name__ == "__main__":
    main()
