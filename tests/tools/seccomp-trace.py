#!/usr/bin/env python3
"""Summarise `strace -f` traces of host-vmm by seccomp thread kind (see seccomp-trace.sh).

A thread's kind is the last filter it installed itself (the kind is recognised by the
thread's name, see KIND_OF), or its creator's kind when it installed none (it inherits
the creator's filter, e.g. ttrpc's client threads). Only calls made after the thread
is confined are counted. Prints, per kind, every call seen with its count; ioctl,
fcntl, socket, clone and tgkill with their deciding argument.
"""
import collections
import os
import re
import sys

# Thread name -> kind (the names host-vmm gives its threads).
KIND_OF = [
    (re.compile(r"^vcpu\d+$"), "vcpu"),
    (re.compile(r"^api$"), "api"),
    (re.compile(r"^vsock-cid\d+$"), "virtio-vsock"),
    (re.compile(r"^virtio-blk$"), "virtio-blk"),
    (re.compile(r"^(agent-log|console.*)$"), "log"),
    (re.compile(r"^(stop-signals|signals)$"), "signals"),
    (re.compile(r"^thread-factory$"), "factory"),
    (re.compile(r"^(guest-setup|wait|vm-watch|session-signals|stdout-pump|stderr-pump|stdin-pump)$"), "cli"),
    (re.compile(r"^(vm|host-vmm)$"), "vmm-or-cli"),
]

LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>(.*)|(\w+)\((.*))$")
ARG_OF = {"ioctl": 1, "fcntl": 1, "socket": 0, "clone": 0, "tgkill": 2, "prctl": 0}


def kind_of(name):
    for pattern, kind in KIND_OF:
        if pattern.match(name):
            return kind
    return None


def summarise(path, by_kind, killed):
    names, kinds, confined, creator = {}, {}, set(), {}
    pending = {}
    first = None
    command = None
    for line in open(path, errors="replace"):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            if "si_code=SYS_SECCOMP" in line:
                tid = int(line.split()[0])
                call = re.search(r"si_syscall=(\w+)", line)
                killed[(kinds.get(tid, "?"), call.group(1) if call else "?")] += 1
            continue
        tid = int(m.group(1))
        if first is None:
            first = tid
            names[tid] = "host-vmm"
        if command is None and m.group(4) == "execve":
            argv = re.findall(r'"([^"]*)"', m.group(5))
            command = next((a for a in argv[2:] if not a.startswith("-")), "?")
        if m.group(2):  # resumed: the call was counted when it started
            call, args, rest = m.group(2), pending.pop(tid, ""), m.group(3)
            ret = rest
        else:
            call, args = m.group(4), m.group(5)
            ret = args
            if "<unfinished ...>" in args:
                pending[tid] = args
        if call in ("clone", "clone3"):
            child = re.search(r"=\s*(\d+)\s*$", ret)
            if child:
                creator[int(child.group(1))] = tid
                if tid in confined:
                    kinds[int(child.group(1))] = kinds[tid]
                    confined.add(int(child.group(1)))
        if call == "prctl" and "PR_SET_NAME" in args:
            name = re.search(r'"([^"]*)"', args)
            names[tid] = name.group(1) if name else "?"
        if call == "seccomp" and "SECCOMP_SET_MODE_FILTER" in args:
            name = names.get(tid, "?")
            kind = kind_of(name)
            if kind == "vmm-or-cli":
                # `boot`'s main thread and `run`'s vm thread run the VM; `run`'s (and the
                # client commands') main thread is the command line.
                kind = "vmm" if name == "vm" or command == "boot" else "cli"
            kinds[tid] = kind or "?" + name
            confined.add(tid)
            continue
        if m.group(2) or tid not in confined:
            continue
        key = call
        if call in ARG_OF:
            parts = [p.strip() for p in args.split(",")]
            if len(parts) > ARG_OF[call]:
                key += " " + parts[ARG_OF[call]].split(" ")[0].rstrip(")")
        by_kind[kinds[tid]][key] += 1


def main():
    by_kind = collections.defaultdict(collections.Counter)
    killed = collections.Counter()
    files = sorted(os.listdir(sys.argv[1]))
    for f in files:
        summarise(os.path.join(sys.argv[1], f), by_kind, killed)
    print(f"{len(files)} host-vmm processes traced")
    for (kind, call), n in sorted(killed.items()):
        print(f"KILLED: a {kind} thread made {call} ({n}x)")
    for kind in sorted(by_kind):
        calls = by_kind[kind]
        print(f"\n[{kind}] {len(calls)} distinct")
        for key in sorted(calls):
            print(f"  {key:48} {calls[key]}")


if __name__ == "__main__":
    main()
