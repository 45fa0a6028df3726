"""The one helper module of the Python tests that start or probe servers (tests/**/*.py):
zoo.cfg + myid, rzk and Apache ZooKeeper processes, four-letter words, waiting.

Import from a script with:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import zkproc

Client ports are on 127.0.0.1 (quorum addresses may be other 127.0.0.x); only processes
started here are signalled, by PID.
"""
import os
import signal
import socket
import subprocess
import time


# ---------------------------------------------------------------- probing

def four(port, cmd, host="127.0.0.1", timeout=1.0, extra=b""):
    """Sends the four-letter word `cmd` (then `extra` bytes) on a fresh connection and returns
    the whole answer; "" if nothing answers. A reset connection ends the answer."""
    out = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(cmd.encode() + extra)
            while chunk := s.recv(65536):
                out += chunk
    except ConnectionResetError:
        pass
    except OSError:
        return ""
    return out.decode(errors="replace")


def field(text, name):
    """The value of `name` in a `srvr`/`stat` ("Name: value") or `mntr` ("name<TAB>value")
    answer, or None."""
    for line in text.splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip() if ":" in line else line.split("\t", 1)[1]
    return None


def mode(port, host="127.0.0.1", timeout=1.0):
    """`srvr`'s Mode (standalone, leader, follower, observer), or None while not serving."""
    return field(four(port, "srvr", host, timeout), "Mode")


def wait_until(pred, timeout, what, step=0.05):
    """Polls `pred` until it is true and returns its value; raises AssertionError naming
    `what` after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_serving(port, proc=None, timeout=60, what="server"):
    """Waits until the server on `port` serves clients: `srvr` reports a Mode (ZooKeeper
    answers `ruok` before it serves). Fails at once if `proc` (a Proc) has exited."""
    def serving():
        if proc is not None and not proc.alive():
            raise AssertionError(f"{what} exited during start-up")
        return mode(port)
    return wait_until(serving, timeout, f"{what} to serve on 127.0.0.1:{port}")


def wait_settled(ports, observers=(), timeout=60, where=""):
    """Waits until the members on `ports` are one leader and followers, those in `observers`
    observers, as `srvr` reports them; returns the leader's port."""
    modes = {}

    def settled():
        modes.update((p, mode(p)) for p in ports)
        voters = [modes[p] for p in ports if p not in observers]
        if (voters.count("leader") == 1 and voters.count("follower") == len(voters) - 1
                and all(modes[p] == "observer" for p in ports if p in observers)):
            return next(p for p in ports if modes[p] == "leader")
        return None
    try:
        return wait_until(settled, timeout, "")
    except AssertionError:
        raise AssertionError(f"ensemble did not settle: {modes}{where}") from None


def check_free(port, host="127.0.0.1"):
    """Raises RuntimeError when something already listens on host:`port` (not our server);
    nothing to check for `port` None (a server without a client port)."""
    if port is None:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise RuntimeError(f"something already listens on {host}:{port}; not our server") from None


def listening_ports(pid):
    """The TCP ports process `pid` listens on (IPv4 and IPv6): its socket inodes
    (/proc/<pid>/fd) matched with the LISTEN rows of /proc/net/tcp{,6}."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


# ---------------------------------------------------------------- configuration

def server_lines(ids, quorum_base, election_base, observers=(), host="127.0.0.1"):
    """The `server.N=<host>:<quorum_base+N>:<election_base+N>[:observer]` lines; `host` is
    one address for all or a function of N (e.g. each member on its own 127.0.0.x)."""
    addr = host if callable(host) else (lambda _: host)
    return [f"server.{i}={addr(i)}:{quorum_base + i}:{election_base + i}"
            + (":observer" if i in observers else "") for i in ids]


def write_myid(data_dir, myid):
    """Creates `data_dir` with the `myid` file of ensemble member `myid`."""
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "myid"), "w") as f:
        f.write(f"{myid}\n")


def write_config(path, port, *settings, servers=(), myid=None):
    """Writes the zoo.cfg `path` of a server on 127.0.0.1:`port` with dataDir
    <dirname(path)>/data (and its myid file when `myid` is given). `settings` ("key=value")
    override the defaults below; `servers` are server.N lines. `port` None: no clientPort
    nor clientPortAddress. Returns `path`."""
    data = os.path.join(os.path.dirname(os.path.abspath(path)), "data")
    os.makedirs(data, exist_ok=True)
    if myid is not None:
        write_myid(data, myid)
    cfg = {"tickTime": "2000", "initLimit": "10", "syncLimit": "5", "dataDir": data,
           "clientPort": str(port), "clientPortAddress": "127.0.0.1",
           "4lw.commands.whitelist": "*", "maxClientCnxns": "0",
           # ZooKeeper's default would open an AdminServer on 0.0.0.0:8080 for each.
           "admin.enableServer": "false"}
    if port is None:
        del cfg["clientPort"], cfg["clientPortAddress"]
    cfg.update(s.split("=", 1) for s in settings)
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in cfg.items()) + "".join(f"{s}\n" for s in servers))
    return path


# ---------------------------------------------------------------- processes

class Proc:
    """A server process we started, signalled only by its own PID: our child (`popen`) or
    a detached Apache ZooKeeper known by PID."""

    def __init__(self, pid, popen=None):
        self.pid = pid
        self.popen = popen

    def alive(self):
        """True until the process has exited: all its threads are gone (a zombie main thread
        whose other threads still exit holds the sockets yet)."""
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            return not zombie or len(os.listdir(f"/proc/{self.pid}/task")) > 1
        except OSError:
            return False

    def signal(self, sig):
        """Sends `sig` (e.g. SIGSTOP, SIGCONT) unless the process has exited."""
        if self.alive():
            os.kill(self.pid, sig)

    def wait_exit(self, timeout):
        """True once the process has exited (reaped when it is our child), False after `timeout` s."""
        deadline = time.time() + timeout
        while self.alive():
            if time.time() > deadline:
                return False
            time.sleep(0.01)
        if self.popen is not None:
            self.popen.wait()
        return True

    def kill9(self):
        """SIGKILL, then waits until the process is gone."""
        self.signal(signal.SIGKILL)
        self.wait_exit(60)

    def stop(self, timeout=30):
        """SIGTERM; SIGKILL when it has not exited after `timeout` s."""
        self.signal(signal.SIGTERM)
        if not self.wait_exit(timeout):
            self.kill9()


def environ(env):
    """os.environ with `env` applied: its variables set, those given as None removed (None
    for `env`: None, the inherited environment)."""
    if env is None:
        return None
    out = {**os.environ, **env}
    return {k: v for k, v in out.items() if v is not None}


def as_user(path, exe, uid, gid=None):
    """Writes the script `path` that runs `exe` (with its arguments) as `uid`:`gid` (default
    `uid`), no supplementary groups, via setpriv; exec keeps the PID. Returns `path`."""
    gid = uid if gid is None else gid
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec setpriv --reuid={uid} --regid={gid} --clear-groups {exe} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def start_rzk(rzk, cfg, port, log=None, env=None, host="127.0.0.1"):
    """Starts `rzk server --config cfg` (`rzk` may be a wrapper such as `as_user`'s; output
    appended to `log`, default server.log next to `cfg`; `env` as for `environ`, e.g.
    RUST_LOG) after checking that nothing listens on `host`:`port`; returns its Proc at once."""
    check_free(port, host)
    log = log or os.path.join(os.path.dirname(os.path.abspath(cfg)), "server.log")
    with open(log, "ab") as out:
        p = subprocess.Popen([rzk, "server", "--config", cfg], stdout=out, stderr=out,
                             stdin=subprocess.DEVNULL, env=environ(env))
    return Proc(p.pid, p)


def run_rzk(rzk, cfg, port, timeout=20, log=None, env=None):
    """Starts rzk as `start_rzk` does and waits until it exits or serves (AssertionError
    after `timeout` s); a server that serves is stopped. Returns (its exit code, None if it
    served, and the text of `log`: start-up errors and warnings)."""
    log = log or os.path.join(os.path.dirname(os.path.abspath(cfg)), "server.log")
    proc = start_rzk(rzk, cfg, port, log=log, env=env)
    try:
        wait_until(lambda: not proc.alive() or mode(port), timeout, "rzk to exit or serve")
    finally:
        code = proc.popen.poll()
        if code is None:
            proc.stop()
    with open(log, errors="replace") as f:
        return code, f.read()


def start_member(kind, args, d, port, myid, settings, servers, apache_extra=()):
    """Starts ensemble member `myid` of `kind` ("rzk" or "apache") in directory `d` on
    127.0.0.1:`port` with the same `settings` (key=value) and `servers` (server.N lines)
    for both kinds: rzk from `args.rzk` with <d>/zoo.cfg, Apache ZooKeeper through
    `args.apache` (scripts/start-apache-zk.sh) with myid in <d>/data; `apache_extra` are
    arguments for ZooKeeper only (e.g. its system properties). Returns its Proc."""
    if kind == "rzk":
        cfg = write_config(os.path.join(d, "zoo.cfg"), port, *settings, servers=servers,
                           myid=myid)
        return start_rzk(args.rzk, cfg, port)
    write_myid(os.path.join(d, "data"), myid)
    return start_apache(args.apache, port, d, *settings, *apache_extra, *servers)


class Ensemble:
    """Three members (ids 1-3) of `kind` on 127.0.0.1: client ports `port_base`+id,
    quorum `port_base`+20+id, election `port_base`+30+id; each member's files under
    `<data_base>/n<id>`; the same `settings` (key=value) for every member."""

    IDS = (1, 2, 3)

    def __init__(self, args, kind, data_base, port_base, settings):
        self.args, self.kind, self.base = args, kind, data_base
        self.settings = list(settings)
        self.port = {i: port_base + i for i in self.IDS}
        self.servers = server_lines(self.IDS, port_base + 20, port_base + 30)
        self.procs = {}

    def start(self):
        """Starts the members and waits until one leads and all serve; returns (leader
        id, [follower ids])."""
        for i in self.IDS:
            self.procs[i] = start_member(self.kind, self.args,
                                         os.path.join(self.base, f"n{i}"), self.port[i],
                                         i, self.settings, self.servers)
        leader_port = wait_settled(list(self.port.values()), timeout=90,
                                   where=f"; see {self.base}")
        leader = next(i for i in self.IDS if self.port[i] == leader_port)
        return leader, [i for i in self.IDS if i != leader]

    def stop_all(self):
        """Resumes (SIGCONT) and kills every member still running."""
        for i in list(self.procs):
            p = self.procs.pop(i)
            p.signal(signal.SIGCONT)
            p.kill9()


class ApacheStart:
    """scripts/start-apache-zk.sh (`script`) running in the background for 127.0.0.1:`port`,
    so that several members start at once (a member of an ensemble waits for the others
    before it answers); `wait` gives its Proc. Arguments as for `start_apache`."""

    def __init__(self, script, port, datadir, *settings, env=None):
        check_free(port)
        self.port = port
        # The script's "none": no client port (it then waits for the election's LOOKING).
        arg = "none" if port is None else str(port)
        self.popen = subprocess.Popen([script, arg, datadir, *settings],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=environ(env))

    def wait(self, timeout=None):
        """The started server's Proc once the script has seen it answer `ruok`; raises
        subprocess.CalledProcessError (its stderr: why) when the script failed."""
        out, err = self.popen.communicate(timeout=timeout)
        if self.popen.returncode != 0:
            raise subprocess.CalledProcessError(self.popen.returncode, self.popen.args, out, err)
        return Proc(int(out.split()[-1]))


def start_apache(script, port, datadir, *settings, env=None):
    """Starts Apache ZooKeeper through scripts/start-apache-zk.sh (`script`) on 127.0.0.1:`port`
    with zoo.cfg, log and dataDir (<datadir>/data) in `datadir`; `settings` are its extra
    arguments (key=value, -Dprop=value, server.N lines), `env` its environment as for
    `environ` (JAVA, JVMFLAGS, ZK_START_TIMEOUT). Returns its Proc once it answers `ruok`;
    subprocess.CalledProcessError when it did not start."""
    return ApacheStart(script, port, datadir, *settings, env=env).wait()
