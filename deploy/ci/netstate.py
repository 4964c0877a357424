#!/usr/bin/env python3
"""Snapshot and restore the host's iptables rules and network links around a container engine.

  netstate.py save FILE      records `iptables-save` (IPv4 and IPv6) and the list of links
  netstate.py restore FILE   undoes only what appeared since: added rules (-D), added chains
                             (-F/-X), changed built-in chain policies (-P), tables that did not
                             exist (nft delete table), added bridge/veth links.
"""
import json
import re
import subprocess
import sys


FAMILIES = (("iptables", "ip"), ("ip6tables", "ip6"))


def iptables_rules(cmd="iptables"):
    out = subprocess.run([cmd + "-save"], capture_output=True, text=True).stdout
    table, rules, chains, policies = None, [], [], {}
    for line in out.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            chains.append([table, name])
            if policy != "-":
                policies[f"{table} {name}"] = policy
        elif line.startswith("-A "):
            rules.append([table, line[3:]])
    return rules, chains, policies


def links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [re.split(r"[:@]", l.split(": ", 1)[1])[0] for l in out.splitlines()]


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "save":
        state = {"links": links()}
        for tool, _ in FAMILIES:
            rules, chains, policies = iptables_rules(tool)
            state[tool] = {"rules": rules, "chains": chains, "policies": policies}
        with open(path, "w") as f:
            json.dump(state, f)
        return 0
    with open(path) as f:
        state = json.load(f)
    left = 0
    for tool, family in FAMILIES:
        before = state[tool]
        rules, chains, policies = iptables_rules(tool)
        old_rules = {tuple(r) for r in before["rules"]}
        old_chains = {tuple(c) for c in before["chains"]}
        old_tables = {c[0] for c in before["chains"]}
        for table, rule in reversed(rules):
            if (table, rule) not in old_rules:
                subprocess.run([tool, "-t", table, "-D"] + rule.split(), capture_output=True)
        new_chains = [c for c in chains if tuple(c) not in old_chains and f"{c[0]} {c[1]}" not in policies]
        for table, chain in new_chains:
            subprocess.run([tool, "-t", table, "-F", chain], capture_output=True)
        for table, chain in new_chains:
            subprocess.run([tool, "-t", table, "-X", chain], capture_output=True)
        for key, policy in policies.items():
            table, chain = key.split()
            want = before["policies"].get(key, "ACCEPT")
            if policy != want:
                subprocess.run([tool, "-t", table, "-P", chain, want], capture_output=True)
        for table in {c[0] for c in chains} - old_tables:
            subprocess.run(["nft", "delete", "table", family, table], capture_output=True)
        left += len([r for r in iptables_rules(tool)[0] if tuple(r) not in old_rules])
    for link in links():
        if link not in state["links"] and re.match(r"^(docker\d*|br-[0-9a-f]+|veth|podman\d*|cni-)", link):
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
    if left:
        print(f"netstate: {left} rule(s) could not be removed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
