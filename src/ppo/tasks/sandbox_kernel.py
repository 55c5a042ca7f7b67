"""The kernel's layers of `ppo.tasks.sandbox`: what a program cannot undo, because the kernel holds it, not Python.

Standard library only: `sandbox_child.py` calls `confine` before the program's first line, and the trainer asks
`landlock_abi` / `seccomp_available` what this kernel offers before it runs any program.

    limits      CPU seconds, address space, file size, open files, no core dumps, no processes   (setrlimit)
    uid         root drops to nobody (65534), with no supplementary groups                        (setuid)
    Landlock    no file outside the scratch folder can be opened, for reading or for writing, by any route
                (open, io, links, /proc, /dev/shm); nothing can be made, moved or removed, scratch included
    seccomp     processes, sockets, signals, ptrace and other processes' limits, namespaces and mounts,
                io_uring, IPC, locks and file watches (channels between programs), sync, ioctl, file modes,
                owners, times and xattrs -> EPERM; without Landlock also the open family and every call that
                makes, moves or removes a path (no files at all)

Landlock (Documentation/userspace-api/landlock.rst): a ruleset "handles" access rights; once the process restricts
itself, a handled right is granted only beneath a path that a rule names. Here every file-system right this
code knows is handled, and one rule grants reading beneath the scratch folder. No call undoes it, and children
and exec'd programs inherit it. seccomp is a blocklist: what it does not name, a program that reached raw system
calls could make; its tables name what could reach past the process or change a file.

Landlock leaves no mark in /proc: the parent reads the seccomp filter count instead (`expected_filters`: one after
Landlock held, two without it; a child whose layer failed never runs its program), and a program can add filters
but never remove one.
"""

import ctypes
import os
import resource
import struct

NOBODY = 65534
# seccomp: system calls refused with EPERM, as (x86_64 number, aarch64 number); None where aarch64 has none.
# fmt: off
SYSCALLS = {
    "fork": (57, None), "vfork": (58, None), "clone": (56, 220), "clone3": (435, 435),       # processes, threads
    "execve": (59, 221), "execveat": (322, 281),
    "socket": (41, 198), "socketpair": (53, 199),                                            # network
    "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131), "rt_sigqueueinfo": (129, 138),  # signals
    "rt_tgsigqueueinfo": (297, 240), "pidfd_send_signal": (424, 424), "pidfd_open": (434, 434),
    "pidfd_getfd": (438, 438), "ptrace": (101, 117), "process_vm_readv": (310, 270),         # other processes
    "process_vm_writev": (311, 271), "setsid": (112, 157), "setpgid": (109, 154), "kcmp": (312, 272),
    "prlimit64": (302, 261), "setrlimit": (160, 164), "setpriority": (141, 140), "ioprio_set": (251, 30),
    "sched_setaffinity": (203, 122), "sched_setscheduler": (144, 119), "sched_setparam": (142, 118),
    "sched_setattr": (314, 274), "process_madvise": (440, 440), "process_mrelease": (448, 448),
    "migrate_pages": (256, 238), "move_pages": (279, 239), "perf_event_open": (298, 241), "bpf": (321, 280),
    "userfaultfd": (323, 282), "add_key": (248, 217), "request_key": (249, 218), "keyctl": (250, 219),
    "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "chroot": (161, 51),     # escapes
    "pivot_root": (155, 41), "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430),
    "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),  # async I/O
    "shmget": (29, 194), "shmat": (30, 196), "shmctl": (31, 195), "shmdt": (67, 197),      # IPC: channels
    "semget": (64, 190), "semop": (65, 193), "semctl": (66, 191), "semtimedop": (220, 192),  # between programs
    "msgget": (68, 186), "msgsnd": (69, 189), "msgrcv": (70, 188), "msgctl": (71, 187), "mq_open": (240, 180),
    "mq_unlink": (241, 181), "mq_timedsend": (242, 182), "mq_timedreceive": (243, 183), "mq_notify": (244, 184),
    "mq_getsetattr": (245, 185), "flock": (73, 32), "inotify_init": (253, None), "inotify_init1": (294, 26),
    "inotify_add_watch": (254, 27), "fanotify_init": (300, 262), "fanotify_mark": (301, 263),  # watching others
    "sync": (162, 81), "syncfs": (306, 267), "fsync": (74, 82), "fdatasync": (75, 83),        # waits SIGKILL
    "sync_file_range": (277, 84), "ioctl": (16, 29), "memfd_create": (319, 279),              # cannot stop
    "truncate": (76, 45), "ftruncate": (77, 46), "fallocate": (285, 47),       # Landlock has truncate from ABI 3
    # metadata, which Landlock does not cover: modes, owners, times, extended attributes
    "chmod": (90, None), "fchmod": (91, 52), "fchmodat": (268, 53), "fchmodat2": (452, 452),
    "chown": (92, None), "fchown": (93, 55), "lchown": (94, None), "fchownat": (260, 54),
    "utime": (132, None), "utimes": (235, None), "futimesat": (261, None), "utimensat": (280, 88),
    "setxattr": (188, 5), "lsetxattr": (189, 6), "fsetxattr": (190, 7), "removexattr": (197, 14),
    "lremovexattr": (198, 15), "fremovexattr": (199, 16), "setxattrat": (463, 463), "removexattrat": (466, 466),
}
# fmt: on
# Without Landlock: every call that opens a path, or makes, moves, links or removes one (no file at all).
# fmt: off
FILE_SYSCALLS = {
    "open": (2, None), "openat": (257, 56), "openat2": (437, 437), "creat": (85, None),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "mkdir": (83, None), "mkdirat": (258, 34),
    "mknod": (133, None), "mknodat": (259, 33), "rename": (82, None), "renameat": (264, 38),
    "renameat2": (316, 276), "link": (86, None), "linkat": (265, 37), "symlink": (88, None),
    "symlinkat": (266, 36), "unlink": (87, None), "unlinkat": (263, 35), "rmdir": (84, None),
}
# fmt: on
AUDIT_ARCH = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1)}  # machine -> (AUDIT_ARCH_*, column)
LANDLOCK_SYSCALLS = (444, 445, 446)  # create_ruleset, add_rule, restrict_self: the same on both
# Landlock's file-system rights by ABI: v1 13 (execute .. make_sym), v2 refer, v3 truncate, v5 ioctl_dev.
FS_RIGHTS_BITS = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
READ_ONLY = 0b1100  # read_file, read_dir: all that is granted, and only beneath scratch
LANDLOCK_NET = 0b11  # ABI >= 4: bind_tcp, connect_tcp (no rule: no TCP at all)
LANDLOCK_SCOPES = 0b11  # ABI >= 6: abstract unix sockets and signals outside the sandbox


def libc():
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


def limit_resources(cpu_s: int, memory: int, file_bytes: int) -> None:
    """RLIMIT_NPROC = 0 stops forks for non-root users (root ignores it: seccomp covers root)."""
    limits = [("RLIMIT_CPU", cpu_s), ("RLIMIT_AS", memory), ("RLIMIT_FSIZE", file_bytes), ("RLIMIT_NOFILE", 32),
              ("RLIMIT_CORE", 0), ("RLIMIT_NPROC", 0)]  # fmt: skip
    for name, value in limits:
        resource.setrlimit(getattr(resource, name), (value, value))


def drop_privileges() -> None:
    """As root a program could write anywhere or signal anyone; as nobody it cannot."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def no_new_privs() -> bool:
    """PR_SET_NO_NEW_PRIVS: required by Landlock and by seccomp without CAP_SYS_ADMIN; never unset."""
    ul = ctypes.c_ulong
    return libc().prctl(38, ul(1), ul(0), ul(0), ul(0)) == 0


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers; 0 without Landlock (older kernel, or not enabled at boot)."""
    if os.uname().machine not in AUDIT_ARCH:
        return 0
    create = LANDLOCK_SYSCALLS[0]
    return max(0, libc().syscall(ctypes.c_long(create), None, ctypes.c_size_t(0), ctypes.c_uint32(1)))


def install_landlock(scratch: str) -> bool:
    """Every file-system right handled; reading granted beneath `scratch` alone, and nothing else anywhere: no
    file is made, written, moved or removed, scratch included (no disk to fill, no tree to delete). False if it
    failed."""
    abi = landlock_abi()
    if abi < 1 or not no_new_privs():
        return False
    create, add_rule, restrict = (ctypes.c_long(n) for n in LANDLOCK_SYSCALLS)
    fs = (1 << FS_RIGHTS_BITS.get(abi, 16)) - 1
    attr = (
        struct.pack("Q", fs)
        + (struct.pack("Q", LANDLOCK_NET) if abi >= 4 else b"")
        + (struct.pack("Q", LANDLOCK_SCOPES) if abi >= 6 else b"")
    )
    lib, buf = libc(), ctypes.create_string_buffer(attr, len(attr))
    ruleset = lib.syscall(create, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    folder = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    try:
        rule = ctypes.create_string_buffer(struct.pack("=Qi", READ_ONLY, folder), 12)  # path_beneath, packed
        ok = (
            lib.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(1), rule, ctypes.c_uint32(0)) == 0
            and lib.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0
        )
    finally:
        os.close(folder)
        os.close(ruleset)
    return ok


def install_seccomp(table: dict) -> bool:
    """A classic BPF filter: arch != ours -> kill; nr in `table` -> EPERM; else allow. False (nothing changed) on an
    architecture without a table or a kernel without seccomp. Filters stack: the kernel applies every one."""
    if os.uname().machine not in AUDIT_ARCH or not no_new_privs():
        return False
    arch, column = AUDIT_ARCH[os.uname().machine]
    blocked = [nrs[column] for nrs in table.values() if nrs[column] is not None]
    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    allow, kill, eperm = 0x7FFF0000, 0x80000000, 0x00050000 | 1
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (ld, 0, 0, 0)]  # seccomp_data.arch, .nr
    if arch == 0xC000003E:  # x86_64: refuse the x32 ABI (nr >= 0x40000000) outright
        prog += [(0x35, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # BPF_JMP|BPF_JGE|BPF_K
    for i, nr in enumerate(blocked):  # jump to the EPERM return after the list on a match
        prog.append((jeq, len(blocked) - i, 0, nr))
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eperm)]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buf))
    ul = ctypes.c_ulong
    return libc().prctl(22, ul(2), ctypes.c_char_p(fprog), ul(0), ul(0)) == 0  # PR_SET_SECCOMP, MODE_FILTER


def seccomp_available() -> bool:
    """Whether this kernel has seccomp filters: /proc/self/status shows a Seccomp line (Linux >= 3.8)."""
    try:
        with open("/proc/self/status") as status:
            return os.uname().machine in AUDIT_ARCH and any(line.startswith("Seccomp:") for line in status)
    except OSError:
        return False


def expected_filters(landlocked: bool) -> int:
    """The seccomp filters of a confined child: SYSCALLS alone when Landlock holds the files, else FILE_SYSCALLS too."""
    return 1 if landlocked else 2


def confine(scratch: str, cpu_s: int, memory: int, file_bytes: int, unsafe: bool = False) -> None:
    """Every kernel layer, in order. A layer that fails raises PermissionError (fail closed), unless `unsafe`: the
    program then runs under whatever held. Without Landlock, a seccomp filter refuses every file call instead."""
    limit_resources(cpu_s, memory, file_bytes)
    drop_privileges()
    tables = [SYSCALLS] if install_landlock(scratch) else [FILE_SYSCALLS, SYSCALLS]
    for table in tables:
        if not install_seccomp(table) and not unsafe:
            raise PermissionError("sandbox: the kernel refused the seccomp filter")
