#!/usr/bin/env python3
"""SASL GSSAPI (Kerberos) on the client port, against rzk and Apache ZooKeeper 3.8 (the
oracle) alike: a throwaway MIT KDC (realm EXAMPLE.COM, on 127.0.0.1), servers configured
the way ZooKeeper users configure them (a JAAS `Server` section with Krb5LoginModule and a
keytab, -Djava.security.krb5.conf, -Dzookeeper.authProvider.1=...SASLAuthenticationProvider;
for rzk these JVM flags come in SERVER_JVMFLAGS, as zkServer.sh passes them) and Java's
zkCli (ZooKeeperMain) logging in with a JAAS `Client` section, plus kazoo (pure-sasl
GSSAPI) when the PyPI package `kerberos` is importable.

  tests/kerberos/kerberos_test.py --rzk target/debug/rzk --apache scripts/start-apache-zk.sh \
      [--impl zk|rzk|both] [--keep] [--only SUBSTRING] [--jobs N] [--no-skips]

Needs the Debian packages krb5-kdc, krb5-admin-server (kadmin.local) and krb5-user, a JDK,
and Debian's zookeeper jars in /usr/share/java. Uses 127.0.0.1 ports 23000-23099: the KDC on
23000, the servers of --impl zk from 23010, those of --impl rzk from 23050.

Prints PASS/FAIL/SKIP per case and "N passed, M failed, K skipped"; exits 1 on a failure
(the work directory is then kept and printed). Only processes started here are signalled,
by PID.

The facts the cases check (ZooKeeper 3.8.0, Debian 12, OpenJDK 17):
  * zkCli connecting to 127.0.0.1 (or localhost) asks for a ticket to
    zookeeper/localhost@EXAMPLE.COM: the service name is zookeeper.sasl.client.username
    (default "zookeeper"), the host the reverse name of 127.0.0.1 (`localhost` by
    /etc/hosts; with zookeeper.sasl.client.canonicalize.hostname=false too), the realm the
    client's own.
  * whoami: "Auth scheme: User", then "ip: 127.0.0.1" and "sasl: <id>" in either order.
  * The sasl id is the client principal, mapped by the server's system properties
    zookeeper.kerberos.removeHostFromPrincipal / zookeeper.kerberos.removeRealmFromPrincipal
    (the zoo.cfg keys kerberos.removeHostFromPrincipal / kerberos.removeRealmFromPrincipal
    set them too; -Dkerberos.removeHostFromPrincipal is NOT read): zkcli/localhost@EXAMPLE.COM
    -> zkcli@EXAMPLE.COM (host removed), zkcli/localhost (realm removed), zkcli (both).
  * zookeeper.superUser is compared with that mapped id; a super user's whoami adds "super: ".
  * A client whose keytab key is stale fails its own JAAS login (AuthFailed event) and goes
    on without SASL. A server whose keytab key is stale does not start: ZooKeeper logs in to
    the KDC with its keytab at start-up. A server whose principal is re-keyed after
    start-up fails the GSSAPI exchange, answers AUTHFAILED and closes the connection.
  * sessionRequireClientSASLAuth=true, or enforce.auth.enabled=true with
    enforce.auth.schemes=sasl: every request of a connection without SASL is answered with
    SESSIONCLOSEDREQUIRESASLAUTH and the connection is closed.
"""
import argparse
import concurrent.futures
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import zkproc  # noqa: E402

REALM = "EXAMPLE.COM"
SERVICE = f"zookeeper/localhost@{REALM}"
ZKCLI_P = f"zkcli@{REALM}"
OTHER_P = f"other@{REALM}"
HOSTCLI_P = f"zkcli/localhost@{REALM}"
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
KDC_PORT = 23000
PORT_BASE = {"zk": 23010, "rzk": 23050}
ENCTYPES = "aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96"

J = "/usr/share/java"
JAVA_CP = ":".join(f"{J}/{j}.jar" for j in (
    "zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-simple"))

# Variables that would point Kerberos (MIT or Java) elsewhere: no process started here
# inherits them, so each one sees only what this script gives it.
KRB_ENV = ("KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5CCNAME", "KRB5_KTNAME",
           "KRB5_CLIENT_KTNAME", "KRB5_TRACE", "JVMFLAGS", "SERVER_JVMFLAGS",
           "CLIENT_JVMFLAGS")

_print_lock = threading.Lock()


def sbin(name):
    """`name` on PATH or in /usr/sbin (kdb5_util, kadmin.local, krb5kdc)."""
    p = shutil.which(name) or os.path.join("/usr/sbin", name)
    if not os.path.exists(p):
        raise SystemExit(f"kerberos_test: {name} not found; install krb5-kdc krb5-admin-server krb5-user")
    return p


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in KRB_ENV}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


# ---------------------------------------------------------------- the KDC

class Kdc:
    """A throwaway MIT KDC for EXAMPLE.COM in `d`, listening on 127.0.0.1:`port` (UDP and
    TCP; clients are told udp_preference_limit=1, so they use TCP)."""

    def __init__(self, d, port):
        self.d = d
        self.port = port
        self.krb5_conf = os.path.join(d, "krb5.conf")
        self.kdc_conf = os.path.join(d, "kdc.conf")
        self.proc = None
        os.makedirs(d, exist_ok=True)
        with open(self.krb5_conf, "w") as f:
            f.write(textwrap.dedent(f"""\
                [libdefaults]
                  default_realm = {REALM}
                  dns_lookup_kdc = false
                  dns_lookup_realm = false
                  dns_canonicalize_hostname = false
                  rdns = false
                  udp_preference_limit = 1
                  ticket_lifetime = 1h
                  default_tkt_enctypes = {ENCTYPES}
                  default_tgs_enctypes = {ENCTYPES}
                  permitted_enctypes = {ENCTYPES}
                [realms]
                  {REALM} = {{
                    kdc = 127.0.0.1:{port}
                  }}
                [domain_realm]
                  localhost = {REALM}
                  .localhost = {REALM}
                """))
        with open(self.kdc_conf, "w") as f:
            f.write(textwrap.dedent(f"""\
                [kdcdefaults]
                  kdc_listen = 127.0.0.1:{port}
                  kdc_tcp_listen = 127.0.0.1:{port}
                [realms]
                  {REALM} = {{
                    database_name = {d}/principal
                    key_stash_file = {d}/stash
                    acl_file = {d}/kadm5.acl
                    max_life = 1h
                    max_renewable_life = 1h
                    master_key_type = aes256-cts-hmac-sha1-96
                    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
                  }}
                [logging]
                  kdc = FILE:{d}/kdc.log
                """))
        self.env = clean_env(KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=self.kdc_conf)
        self._run([sbin("kdb5_util"), "create", "-s", "-r", REALM, "-P", "master-Kdc-pw-0a1b"])

    def _run(self, argv):
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        # kadmin.local -q exits 0 even when the query failed; its errors name the query.
        if r.returncode != 0 or "error" in r.stderr.lower() or "cannot" in r.stderr.lower():
            raise RuntimeError(f"{' '.join(argv)}: rc {r.returncode}\n{r.stdout}{r.stderr}")
        return r.stdout

    def kadmin(self, query):
        return self._run([sbin("kadmin.local"), "-r", REALM, "-q", query])

    def add(self, principal):
        self.kadmin(f"addprinc -randkey {principal}")

    def export(self, principal, keytab):
        """ktadd: gives `principal` new random keys (kvno + 1) and appends them to `keytab`;
        keytabs exported before hold stale keys from then on."""
        self.kadmin(f"ktadd -k {keytab} -e aes256-cts-hmac-sha1-96:normal,"
                    f"aes128-cts-hmac-sha1-96:normal {principal}")
        return keytab

    def start(self):
        zkproc.check_free(self.port)  # else we would talk to somebody else's KDC
        log = open(os.path.join(self.d, "krb5kdc.out"), "wb")
        self.proc = subprocess.Popen([sbin("krb5kdc"), "-n"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.time() + 15
        while True:
            if self.proc.poll() is not None:
                with open(os.path.join(self.d, "krb5kdc.out"), errors="replace") as f:
                    raise RuntimeError(f"krb5kdc exited: {f.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("krb5kdc does not listen on 127.0.0.1:%d" % self.port)
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def jaas(section, keytab, principal):
    return textwrap.dedent(f"""\
        {section} {{
          com.sun.security.auth.module.Krb5LoginModule required
          useKeyTab=true
          keyTab="{keytab}"
          storeKey=true
          useTicketCache=false
          principal="{principal}";
        }};
        """)


# ---------------------------------------------------------------- zkCli output

NOISE = ("SLF4J:", "Connecting to ", "Welcome to ZooKeeper!", "JLine support is")


class Cli:
    """One zkCli run: its exit code, raw output and the lines that matter (stack frames,
    blank lines and start-up chatter dropped)."""

    def __init__(self, argv, rc, raw):
        self.argv = argv
        self.rc = rc
        self.raw = raw
        self.lines = [l.rstrip() for l in raw.splitlines()
                      if l.strip() and not l.startswith(NOISE) and l.strip() != "WATCHER::"
                      and not l.lstrip().startswith("at ") and not l.lstrip().startswith("... ")]

    def has(self, line):
        return line in self.lines

    def grep(self, text):
        return [l for l in self.lines if text in l]

    def whoami(self):
        """The whoami lines after "Auth scheme: User", as a set (their order varies)."""
        out = set()
        for l in self.lines:
            for scheme in ("ip: ", "sasl: ", "super:", "digest: ", "x509: "):
                if l.startswith(scheme):
                    out.add(l)
        return out

    def __str__(self):
        return "\n".join(self.lines)


class Fail(AssertionError):
    pass


def check(cond, what, cli=None):
    if not cond:
        raise Fail(what + (f"\n--- zkCli output (filtered) ---\n{cli}\n--- rc {cli.rc}"
                           if cli is not None else ""))


SASL_EVENT = "WatchedEvent state:SaslAuthenticated type:None path:null"
AUTHFAILED_EVENT = "WatchedEvent state:AuthFailed type:None path:null"


# ---------------------------------------------------------------- one implementation

class Run:
    def __init__(self, args, impl, work):
        self.args = args
        self.impl = impl
        self.work = os.path.join(work, impl)
        os.makedirs(self.work)
        self.ports = itertools.count(PORT_BASE[impl])
        self.procs = []
        self.procs_lock = threading.Lock()
        self.results = []
        self.kt = {}
        self.client_jaas = {}
        self.cli_runs = itertools.count()

    # ------------------------------------------------------------ set-up

    def setup_kdc(self):
        kd = os.path.join(self.work, "kdc")
        self.kdc = Kdc(kd, KDC_PORT)
        k = self.kdc
        for p in (SERVICE, ZKCLI_P, OTHER_P, HOSTCLI_P):
            k.add(p)
        # Stale copies first: exporting again re-keys the principal (kvno + 1).
        self.kt["server-stale"] = k.export(SERVICE, os.path.join(kd, "server-stale.keytab"))
        self.kt["zkcli-stale"] = k.export(ZKCLI_P, os.path.join(kd, "zkcli-stale.keytab"))
        self.kt["server"] = k.export(SERVICE, os.path.join(kd, "server.keytab"))
        self.kt["zkcli"] = k.export(ZKCLI_P, os.path.join(kd, "zkcli.keytab"))
        self.kt["other"] = k.export(OTHER_P, os.path.join(kd, "other.keytab"))
        self.kt["hostcli"] = k.export(HOSTCLI_P, os.path.join(kd, "zkcli_localhost.keytab"))
        self.server_jaas = self.write(os.path.join(kd, "server-jaas.conf"),
                                      jaas("Server", self.kt["server"], SERVICE))
        self.server_stale_jaas = self.write(os.path.join(kd, "server-stale-jaas.conf"),
                                            jaas("Server", self.kt["server-stale"], SERVICE))
        # ZooKeeper's own JAAS examples leave the realm out of the server's principal.
        self.server_norealm_jaas = self.write(
            os.path.join(kd, "server-norealm-jaas.conf"),
            jaas("Server", self.kt["server"], SERVICE.split("@")[0]))
        for who, p, kt in (("zkcli", ZKCLI_P, "zkcli"), ("other", OTHER_P, "other"),
                           ("hostcli", HOSTCLI_P, "hostcli"),
                           ("zkcli-stale", ZKCLI_P, "zkcli-stale")):
            self.client_jaas[who] = self.write(os.path.join(kd, f"client-{who}-jaas.conf"),
                                               jaas("Client", self.kt[kt], p))
        k.start()

    @staticmethod
    def write(path, text):
        with open(path, "w") as f:
            f.write(text)
        return path

    # ------------------------------------------------------------ servers

    def server_flags(self, sysprops, jaas_file=None, krb5_flag=True, krb5_conf=None):
        return ([f"-Djava.security.auth.login.config={jaas_file or self.server_jaas}"]
                + ([f"-Djava.security.krb5.conf={krb5_conf or self.kdc.krb5_conf}"]
                   if krb5_flag else [])
                + [f"-Dzookeeper.authProvider.1={SASL_PROVIDER}"]
                + ["-D" + p for p in sysprops])

    def start_server(self, name, sysprops=(), cfg=(), jaas_file=None, krb5_conf=None):
        """Starts a server of this implementation with the Kerberos JVM flags (+ `sysprops`,
        "name=value") and zoo.cfg lines `cfg`; returns its port once it serves."""
        port = next(self.ports)
        d = os.path.join(self.work, f"{self.impl}-{name}")
        flags = self.server_flags(sysprops, jaas_file, krb5_conf=krb5_conf)
        if self.impl == "zk":
            p = zkproc.start_apache(self.args.apache, port, d, *cfg, *flags,
                                    env={k: None for k in KRB_ENV})
        else:
            cfgfile = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *cfg)
            env = {k: None for k in KRB_ENV}
            env["SERVER_JVMFLAGS"] = " ".join(flags)
            p = zkproc.start_rzk(self.args.rzk, cfgfile, port, env=env)
        with self.procs_lock:
            self.procs.append(p)
        try:
            zkproc.wait_serving(port, p, 60, f"{self.impl} {name}")
        except AssertionError as e:
            raise Fail(f"{e}\n{self.server_log(d)}") from None
        return port

    def refused_start(self, name, sysprops=(), cfg=(), jaas_file=None, krb5_flag=True,
                      extra_env=None):
        """Starts a server that must not start; returns (its start-up error output)."""
        port = next(self.ports)
        d = os.path.join(self.work, f"{self.impl}-{name}")
        flags = self.server_flags(sysprops, jaas_file, krb5_flag)
        if self.impl == "zk":
            try:
                p = zkproc.start_apache(self.args.apache, port, d, *cfg, *flags,
                                        env={**{k: None for k in KRB_ENV}, **(extra_env or {})})
            except subprocess.CalledProcessError as e:
                return e.stderr
            with self.procs_lock:
                self.procs.append(p)
            raise Fail(f"zookeeper {name} started (pid {p.pid}); it should not")
        cfgfile = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *cfg)
        env = {**{k: None for k in KRB_ENV}, **(extra_env or {})}
        env["SERVER_JVMFLAGS"] = " ".join(flags)
        code, log = zkproc.run_rzk(self.args.rzk, cfgfile, port, timeout=30, env=env)
        if code is None:
            tail = "\n".join(log.splitlines()[-15:])
            raise Fail(f"rzk {name} served; it should not start (ZooKeeper logs in to the KDC "
                       f"with its keytab at start-up and exits when that fails)\n{tail}")
        return log

    @staticmethod
    def server_log(d):
        for name in ("server.log", "zookeeper.log"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    lines = [l for l in f.read().splitlines() if not l.lstrip().startswith("at ")]
                return f"--- last lines of {p} ---\n" + "\n".join(lines[-25:])
        return ""

    def stop_servers(self):
        with self.procs_lock:
            procs, self.procs = self.procs, []
        for p in procs:
            p.stop(15)

    # ------------------------------------------------------------ clients

    def zkcli(self, port, who, cmds, flags=(), host="127.0.0.1"):
        """zkCli (ZooKeeperMain) on host:port running `cmds` in one session (stdin, ended
        by quit). `who`: a key of client_jaas (JAAS Client section, SASL on) or None
        (-Dzookeeper.sasl.client=false)."""
        argv = ["java", "-Xmx128m", "-Xshare:auto", "-XX:TieredStopAtLevel=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                f"-Djava.security.krb5.conf={self.kdc.krb5_conf}"]
        if who is None:
            argv.append("-Dzookeeper.sasl.client=false")
        else:
            argv += [f"-Djava.security.auth.login.config={self.client_jaas[who]}",
                     "-Dzookeeper.sasl.client=true"]
        argv += [*flags, "-cp", JAVA_CP, "org.apache.zookeeper.ZooKeeperMain",
                 "-server", f"{host}:{port}"]
        stdin = "".join(c + "\n" for c in [*cmds, "quit"])
        try:
            r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60,
                               env=clean_env())
            rc, raw = r.returncode, r.stdout
        except subprocess.TimeoutExpired as e:
            out = e.stdout or b""
            rc, raw = "timeout", out.decode(errors="replace") if isinstance(out, bytes) else out
        n = next(self.cli_runs)
        self.write(os.path.join(self.work, f"zkcli-{n:02d}-{who}-{port}.out"),
                   " ".join(argv) + "\n<<<\n" + stdin + ">>>\n" + raw)
        return Cli(argv, rc, raw)

    def rzk_shell(self, port, who, cmds, extra_flags="", oneshot=False, jaas=None):
        """`rzk shell` (rzk-client) on 127.0.0.1:port running `cmds` (interactively, or
        the one command as arguments with `oneshot`), logging in as zkCli would: the JAAS
        Client section of `who` (or the file `jaas`) and the krb5.conf in CLIENT_JVMFLAGS."""
        flags = (f"-Djava.security.auth.login.config={jaas or self.client_jaas[who]} "
                 f"-Djava.security.krb5.conf={self.kdc.krb5_conf} {extra_flags}").strip()
        argv = [self.args.rzk, "shell", "-server", f"127.0.0.1:{port}"]
        if oneshot:
            argv += cmds[0].split()
        stdin = "" if oneshot else "".join(c + "\n" for c in [*cmds, "quit"])
        try:
            r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60,
                               env=clean_env(CLIENT_JVMFLAGS=flags))
            rc, raw = r.returncode, r.stdout
        except subprocess.TimeoutExpired as e:
            out = e.stdout or b""
            rc, raw = "timeout", out.decode(errors="replace") if isinstance(out, bytes) else out
        n = next(self.cli_runs)
        self.write(os.path.join(self.work, f"rzkshell-{n:02d}-{who}-{port}.out"),
                   " ".join(argv) + f"\nCLIENT_JVMFLAGS={flags}\n<<<\n" + stdin + ">>>\n" + raw)
        return Cli(argv, rc, raw)

    def kazoo(self, port, principal, script_body, extra_env=None, authzid=None):
        """Runs `script_body` (Python; `zk` is a started KazooClient logged in with GSSAPI as
        `principal`, zkext imported) in a child interpreter, with a ccache of its own filled
        from the principal's keytab by MIT's client-keytab support (KRB5_CLIENT_KTNAME).
        Returns (rc, output)."""
        who = {ZKCLI_P: "zkcli", OTHER_P: "other", HOSTCLI_P: "hostcli"}[principal]
        n = next(self.cli_runs)
        authz = "" if authzid is None else f', "authorization_id": {authzid!r}'
        prog = textwrap.dedent(f"""\
            import sys, logging
            sys.path.insert(0, {os.path.join(ROOT, 'tests', 'compat', 'kazoo')!r})
            logging.basicConfig(level=logging.WARNING)
            import zkext
            from kazoo.client import KazooClient
            from kazoo.exceptions import AuthFailedError, NoAuthError
            from kazoo.security import make_acl
            zk = KazooClient(hosts="localhost:{port}", timeout=10,
                             connection_retry={{"max_tries": 0}}, command_retry={{"max_tries": 0}},
                             sasl_options={{"mechanism": "GSSAPI", "service": "zookeeper",
                                            "principal": {principal!r}{authz}}})
            """) + textwrap.dedent(script_body)
        env = clean_env(KRB5_CONFIG=self.kdc.krb5_conf,
                        KRB5CCNAME=f"FILE:{self.work}/kazoo-cc-{n}",
                        KRB5_CLIENT_KTNAME=self.kt[who], **(extra_env or {}))
        r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                           timeout=60, env=env, stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        self.write(os.path.join(self.work, f"kazoo-{n:02d}-{who}-{port}.out"), prog + "\n>>>\n" + out)
        return r.returncode, out

    # ------------------------------------------------------------ bookkeeping

    def case(self, name, fn):
        t0 = time.time()
        try:
            note = fn()
            status = "SKIP" if isinstance(note, str) and note.startswith("SKIP") else "PASS"
            detail = note if isinstance(note, str) else ""
        except Fail as e:
            status, detail = "FAIL", str(e)
        except Exception:
            status, detail = "FAIL", traceback.format_exc()
        dt = time.time() - t0
        with _print_lock:
            line = f"{status} [{self.impl}] {name} ({dt:.1f}s)"
            if detail and status != "PASS":
                line += "\n" + textwrap.indent(detail.rstrip(), "    ")
            print(line, flush=True)
        self.results.append((name, status))


# ---------------------------------------------------------------- the cases

def case_a_sasl_identity(run, base):
    """zkcli@EXAMPLE.COM gets the id sasl:zkcli@EXAMPLE.COM; a sasl ACL on it lets zkcli in
    and keeps other@EXAMPLE.COM and a client without SASL out."""
    c = run.zkcli(base, "zkcli", ["whoami", "create /a a-data",
                                  f"setAcl /a sasl:{ZKCLI_P}:cdrwa", "getAcl /a", "get /a"])
    check(c.has(SASL_EVENT), "no SaslAuthenticated event", c)
    check(c.has("Auth scheme: User"), "whoami: no 'Auth scheme: User' line", c)
    check(c.whoami() == {"ip: 127.0.0.1", f"sasl: {ZKCLI_P}"},
          f"whoami: want ip: 127.0.0.1 and sasl: {ZKCLI_P}, got {sorted(c.whoami())}", c)
    check(c.has("Created /a"), "create /a failed", c)
    check(c.has(f"'sasl,'{ZKCLI_P}") and c.has(": cdrwa"), "getAcl /a: no sasl ACL", c)
    check(c.has("a-data"), "get /a: zkcli cannot read its node", c)
    check(c.rc == 0, f"zkCli exit status {c.rc}, want 0", c)

    o = run.zkcli(base, "other", ["whoami", "get /a", "set /a other-data", "getAcl /a"])
    check(o.has(SASL_EVENT), "other: no SaslAuthenticated event", o)
    check(o.whoami() == {"ip: 127.0.0.1", f"sasl: {OTHER_P}"},
          f"other: whoami {sorted(o.whoami())}", o)
    check(o.lines.count("Insufficient permission : /a") == 3,
          "other: want 'Insufficient permission : /a' for get, set and getAcl", o)
    check(not o.has("a-data"), "other read /a", o)

    n = run.zkcli(base, None, ["whoami", "get /a"])
    check(not n.has(SASL_EVENT) and not n.has(AUTHFAILED_EVENT), "no-SASL client: SASL event", n)
    check(n.whoami() == {"ip: 127.0.0.1"}, f"no-SASL client: whoami {sorted(n.whoami())}", n)
    check(n.has("Insufficient permission : /a") and not n.has("a-data"),
          "no-SASL client: want 'Insufficient permission : /a'", n)


# The ids a principal could end up with; /<prefix>-<key> grants only that id.
def candidates(principal):
    primary_host, realm = principal.split("@")
    primary = primary_host.split("/")[0]
    out = {"full": principal, "nohost": f"{primary}@{realm}", "short": primary}
    if "/" in primary_host:
        out["norealm"] = primary_host
    return out


def identity_probe(run, port, who, principal, prefix):
    """One zkCli session as `who`: makes one node per candidate id (ACL: that id only),
    reads them all and runs whoami. Returns (the set of sasl ids whoami shows, the
    candidate ids whose node was readable, Cli)."""
    cands = candidates(principal)
    cmds = [f"create /{prefix}-{k} ok-{k} sasl:{v}:cdrwa" for k, v in cands.items()]
    cmds += [f"get /{prefix}-{k}" for k in cands] + ["whoami"]
    c = run.zkcli(port, who, cmds)
    check(c.has(SASL_EVENT), "no SaslAuthenticated event", c)
    for k in cands:
        check(c.has(f"Created /{prefix}-{k}"), f"create /{prefix}-{k} failed", c)
    granted = {v for k, v in cands.items() if c.has(f"ok-{k}")}
    sasl = {l[len("sasl: "):] for l in c.whoami() if l.startswith("sasl: ")}
    return sasl, granted, c


def expect_identity(run, port, who, principal, prefix, want):
    sasl, granted, c = identity_probe(run, port, who, principal, prefix)
    check(sasl == {want}, f"{principal}: whoami sasl ids {sorted(sasl)}, want [{want}]", c)
    check(granted == {want}, f"{principal}: readable sasl ACL ids {sorted(granted)}, want [{want}]", c)
    return f"{principal} -> sasl:{want}"


def case_b(run, label, sysprops=(), cfg=(), want_host=None, want_plain=None, base=None,
           krb5_conf=None):
    def body():
        port = base if base is not None else run.start_server(
            label, sysprops, cfg, krb5_conf=krb5_conf() if krb5_conf else None)
        notes = [expect_identity(run, port, "hostcli", HOSTCLI_P, f"b-{label}-h", want_host)]
        if want_plain is not None:
            notes.append(expect_identity(run, port, "zkcli", ZKCLI_P, f"b-{label}-p", want_plain))
    return body


def krb5_conf_by_includes(run):
    """The realm's krb5.conf split as distributions ship it: the main file only includes
    (`includedir` for [libdefaults], `include` for the rest), and the included directory
    also holds files both readers skip (a name with `~`, a hidden .conf), which sort first
    and name another default realm. Returns the main file's path."""
    with open(run.kdc.krb5_conf) as f:
        text = f.read()
    libdefaults, rest = text.split("[realms]", 1)
    d = os.path.join(run.work, f"{run.impl}-krb5-includes")
    confd = os.path.join(d, "krb5.conf.d")
    os.makedirs(confd, exist_ok=True)
    for skipped in ("a~", ".a.conf"):
        with open(os.path.join(confd, skipped), "w") as f:
            f.write("[libdefaults]\n  default_realm = WRONG.ORG\n")
    with open(os.path.join(confd, "libdefaults.conf"), "w") as f:
        f.write(libdefaults)
    realms = os.path.join(d, "realms.conf")
    with open(realms, "w") as f:
        f.write("[realms]" + rest)
    main = os.path.join(d, "krb5.conf")
    with open(main, "w") as f:
        f.write(f"# default_realm is in {confd}\nincludedir {confd}\ninclude {realms}\n")
    return main


def case_c_super_user(run):
    """zookeeper.superUser=zkcli@EXAMPLE.COM: zkcli reads and writes a node only other may
    touch; zkcli/localhost@EXAMPLE.COM (another id) is not super."""
    port = run.start_server("superuser", [f"zookeeper.superUser={ZKCLI_P}"])
    o = run.zkcli(port, "other", [f"create /c c-data sasl:{OTHER_P}:cdrwa", "get /c"])
    check(o.has("Created /c") and o.has("c-data"), "other could not make /c", o)
    s = run.zkcli(port, "zkcli", ["whoami", "get /c", "set /c c-super", "get /c", "getAcl /c"])
    check(s.has(SASL_EVENT), "no SaslAuthenticated event", s)
    # ZooKeeper prints the super id as "super: " (empty id; Cli strips the blank).
    check(s.whoami() == {"ip: 127.0.0.1", f"sasl: {ZKCLI_P}", "super:"},
          f"super user whoami {sorted(s.whoami())}, want ip, sasl: {ZKCLI_P} and 'super: '", s)
    check(s.has("c-data") and s.has("c-super") and s.has(f"'sasl,'{OTHER_P}"),
          "super user could not read/write/getAcl /c", s)
    check(not s.grep("Insufficient permission"), "super user refused", s)
    h = run.zkcli(port, "hostcli", ["whoami", "get /c"])
    check(h.whoami() == {"ip: 127.0.0.1", f"sasl: {HOSTCLI_P}"},
          f"zkcli/localhost whoami {sorted(h.whoami())}", h)
    check(h.has("Insufficient permission : /c"), "zkcli/localhost is treated as super", h)


def case_d_stale_client_keytab(run, base):
    """The client's keytab holds an old key: its JAAS login fails at the KDC, before any
    SASL packet; zkCli reports AuthFailed and goes on WITHOUT SASL (the server sees a
    plain client): no sasl id, a sasl ACL refuses it."""
    c = run.zkcli(base, "zkcli-stale", ["whoami", f"create /d-stale x sasl:{ZKCLI_P}:cdrwa",
                                        "get /d-stale"])
    check(c.has(AUTHFAILED_EVENT), "no AuthFailed event", c)
    check(bool(c.grep("SASL configuration failed. Will continue connection to Zookeeper "
                      "server without SASL authentication")), "no 'SASL configuration failed'", c)
    check(c.has("javax.security.auth.login.LoginException: Checksum failed"),
          "no LoginException: Checksum failed", c)
    check(not c.has(SASL_EVENT), "SaslAuthenticated with a stale keytab", c)
    check(c.has("WatchedEvent state:SyncConnected type:None path:null"), "not connected", c)
    check(c.whoami() == {"ip: 127.0.0.1"}, f"whoami {sorted(c.whoami())}", c)
    check(c.has("Created /d-stale") and c.has("Insufficient permission : /d-stale"),
          "stale client: want create ok, get 'Insufficient permission : /d-stale'", c)


def case_d_stale_server_keytab(run):
    """The server's keytab holds an old key of zookeeper/localhost: ZooKeeper logs in to the
    KDC at start-up (Krb5LoginModule), which fails, and the server exits."""
    out = run.refused_start("stale-server-keytab", jaas_file=run.server_stale_jaas)
    if run.impl == "zk":
        want = ("Could not configure server because SASL configuration did not allow the  "
                "ZooKeeper server to authenticate itself properly: "
                "javax.security.auth.login.LoginException: Checksum failed")
        check(want in out, f"zookeeper: want {want!r} in its output, got:\n{out[-3000:]}")
    else:
        # rzk logs in to the KDC and accepts a ticket for itself at start-up; the error
        # names the section, the principal and the keytab.
        # The KDC's reason, not just any start-up failure: the stale key cannot decrypt.
        check("Kerberos" in out and "keyTab" in out and SERVICE in out
              and "Decrypt integrity check failed" in out,
              f"rzk: want the Kerberos error naming principal, keyTab and the stale key's "
              f"decrypt failure, got:\n{out[-3000:]}")


def case_a_principal_without_realm(run):
    """principal="zookeeper/localhost" (no realm, as ZooKeeper's JAAS examples write it):
    the server starts and zkcli logs in with its usual id (review of session 58: rzk
    refused this principal at start-up)."""
    port = run.start_server("norealm", jaas_file=run.server_norealm_jaas)
    c = run.zkcli(port, "zkcli", ["whoami"])
    check(c.has(SASL_EVENT), "no SaslAuthenticated event", c)
    check(c.whoami() == {"ip: 127.0.0.1", f"sasl: {ZKCLI_P}"},
          f"whoami: want sasl: {ZKCLI_P}, got {sorted(c.whoami())}", c)


def case_d_krb5_config_env(run):
    """KRB5_CONFIG names the realm's krb5.conf, -Djava.security.krb5.conf does not: Java
    never reads KRB5_CONFIG, so ZooKeeper's start-up login uses /etc/krb5.conf, cannot
    find the realm's KDC and exits. rzk reads the same file as Java (and its name rules
    the same default realm): it does not start either. (Review of session 58: rzk's
    library read KRB5_CONFIG while its name rules read /etc/krb5.conf's other default
    realm, so every client counted as foreign and could choose its id.)"""
    if os.path.exists("/etc/krb5.conf"):
        with open("/etc/krb5.conf") as f:
            if REALM in f.read():
                return f"SKIP: /etc/krb5.conf knows {REALM}"
    out = run.refused_start("krb5-config-env", krb5_flag=False,
                            extra_env={"KRB5_CONFIG": run.kdc.krb5_conf})
    # Both for the reason that matters: the realm's KDC is unknown to /etc/krb5.conf.
    if run.impl == "rzk":
        check("Kerberos" in out and SERVICE in out
              and f'Cannot find KDC for realm "{REALM}"' in out
              and "Kerberos settings from /etc/krb5.conf" in out,
              f"rzk: want the Kerberos start-up error (no KDC for {REALM}), got:\n{out[-3000:]}")
    else:
        check("LoginException: Cannot locate KDC" in out,
              f"zookeeper: want its login's 'Cannot locate KDC', got:\n{out[-3000:]}")


def case_d_require_sasl(run, label, sysprops):
    def body():
        port = run.start_server(label, sysprops)
        n = run.zkcli(port, None, ["whoami", "ls /", "create /d-req x", "ls /", "ls /"])
        check(not n.has(SASL_EVENT) and not n.has(AUTHFAILED_EVENT), "no-SASL client: SASL event?", n)
        # ZooKeeper 3.8: every request of a connection without SASL (whoami included) is
        # answered with SESSIONCLOSEDREQUIRESASLAUTH (-124) and the connection is closed; the
        # session lives on, the client reconnects to it and the next request fares the same.
        # zkCli 3.8.0's whoami ignores the error: it prints "Auth scheme: User" and no id.
        check(n.has("WatchedEvent state:Disconnected type:None path:null"),
              "no-SASL client: the server did not close the connection", n)
        check(n.whoami() == set(), f"no-SASL client: whoami answered {sorted(n.whoami())}", n)
        check(bool(n.grep("KeeperErrorCode = Session closed because client failed to authenticate")),
              "no-SASL client: no 'Session closed because client failed to authenticate'", n)
        check(not n.has("Created /d-req"), "no-SASL client created a node", n)
        s = run.zkcli(port, "zkcli", ["whoami", "create /d-req x", "ls /"])
        check(s.has(SASL_EVENT), "SASL client: no SaslAuthenticated event", s)
        check(s.whoami() == {"ip: 127.0.0.1", f"sasl: {ZKCLI_P}"}, f"whoami {sorted(s.whoami())}", s)
        check(s.has("Created /d-req"), "SASL client could not create", s)
    return body


def case_d_rotated_server_key(run):
    """zookeeper/localhost is re-keyed after the server started (its keytab now stale):
    the client's ticket is for the new key, the server's GSSAPI accept fails, it answers
    AUTHFAILED and closes the connection; zkCli shows AuthFailed and no session."""
    kd = run.kdc.d
    kt = os.path.join(kd, "server-rotated.keytab")
    shutil.copy(run.kt["server"], kt)
    jaas_file = run.write(os.path.join(kd, "server-rotated-jaas.conf"), jaas("Server", kt, SERVICE))
    port = run.start_server("rotated-key", jaas_file=jaas_file)
    run.kdc.export(SERVICE, os.path.join(kd, "server-after-rotation.keytab"))
    c = run.zkcli(port, "zkcli", ["whoami", "ls /"])
    check(c.has("WatchedEvent state:SyncConnected type:None path:null"), "no SyncConnected", c)
    check(c.has(AUTHFAILED_EVENT), "no AuthFailed event", c)
    check(not c.has(SASL_EVENT), "SaslAuthenticated with a rotated server key", c)
    check(bool(c.grep("SASL authentication failed using login context 'Client'")),
          "no 'SASL authentication failed using login context'", c)
    check(c.has("Not connected"), "ls / should say 'Not connected' (connection closed)", c)
    check(not c.grep("sasl: "), "whoami shows a sasl id", c)


KAZOO_WHO = """\
zk.start(timeout=15)
print("WHOAMI", sorted(zkext.who_am_i(zk)))
"""


def case_e_kazoo(run, base):
    try:
        import kazoo  # noqa: F401
        import puresasl  # noqa: F401
        import kerberos  # noqa: F401
    except ImportError as e:
        return f"SKIP: {e.name} not importable by {sys.executable} (kazoo GSSAPI needs " \
               "kazoo, pure-sasl and the PyPI package kerberos, built with libkrb5-dev)"
    rc, out = run.kazoo(base, ZKCLI_P, KAZOO_WHO + f"""\
zk.create("/e", b"e-data", acl=[make_acl("sasl", {ZKCLI_P!r}, all=True)])
print("GOT", zk.get("/e")[0].decode())
zk.stop(); zk.close()
""")
    check(rc == 0, f"kazoo as zkcli failed (rc {rc}):\n{out}")
    check(f"WHOAMI [('ip', '127.0.0.1'), ('sasl', '{ZKCLI_P}')]" in out, f"kazoo zkcli whoami:\n{out}")
    check("GOT e-data" in out, f"kazoo zkcli get /e:\n{out}")
    other_reads = KAZOO_WHO + """\
try:
    zk.get("/e")
    print("READ")
except NoAuthError:
    print("NOAUTH")
zk.stop(); zk.close()
"""
    rc, out = run.kazoo(base, OTHER_P, other_reads)
    check(rc == 0, f"kazoo as other failed (rc {rc}):\n{out}")
    check(f"WHOAMI [('ip', '127.0.0.1'), ('sasl', '{OTHER_P}')]" in out, f"kazoo other whoami:\n{out}")
    check("NOAUTH" in out, f"kazoo other read /e:\n{out}")
    # Asking for zkcli's id as authorization id changes nothing: the id comes from the
    # principal (ZooKeeper: in the default realm; rzk: always).
    rc, out = run.kazoo(base, OTHER_P, other_reads, authzid=ZKCLI_P)
    check(rc == 0, f"kazoo as other asking for zkcli's id failed (rc {rc}):\n{out}")
    check(f"WHOAMI [('ip', '127.0.0.1'), ('sasl', '{OTHER_P}')]" in out,
          f"kazoo other asking for zkcli's id: whoami\n{out}")
    check("NOAUTH" in out, f"kazoo other asking for zkcli's id read /e:\n{out}")


def case_f_rzk_shell(run, base):
    """rzk shell (rzk-client's GSSAPI login) against this server: the same identities and
    ACL outcomes as zkCli's."""
    n = run.rzk_shell(base, "zkcli", ["whoami", f"create /f x sasl:{ZKCLI_P}:cdrwa", "get /f"])
    check(n.rc == 0, f"rzk shell as zkcli exited {n.rc}", n)
    check(n.whoami() == {"ip: 127.0.0.1", f"sasl: {ZKCLI_P}"},
          f"rzk shell as zkcli: whoami {sorted(n.whoami())}", n)
    check(n.has("x"), "rzk shell as zkcli: get /f did not print its data", n)
    n = run.rzk_shell(base, "hostcli", ["whoami", "get /f"])
    check(n.whoami() == {"ip: 127.0.0.1", f"sasl: {HOSTCLI_P}"},
          f"rzk shell as zkcli/localhost: whoami {sorted(n.whoami())}", n)
    check(n.has("Insufficient permission : /f"), "rzk shell as zkcli/localhost read /f", n)
    # Without canonicalization an address written as such is still looked up in reverse,
    # as Java's getHostName does: the shell asks for zookeeper/localhost, as zkCli does
    # (review of session 58: it asked for zookeeper/127.0.0.1 and failed).
    n = run.rzk_shell(base, "zkcli", ["whoami"],
                      "-Dzookeeper.sasl.client.canonicalize.hostname=false")
    check(n.whoami() == {"ip: 127.0.0.1", f"sasl: {ZKCLI_P}"},
          f"rzk shell without canonicalization: whoami {sorted(n.whoami())}", n)
    # Its own login failing (a stale keytab) ends the session with AuthFailed and the
    # reason printed (zkCli goes on without SASL instead: docs/COMPATIBILITY.md).
    n = run.rzk_shell(base, "zkcli-stale", ["ls /"])
    check(n.has(AUTHFAILED_EVENT), "rzk shell with a stale keytab: no AuthFailed event", n)
    check(bool(n.grep("SASL authentication failed: ")),
          "rzk shell with a stale keytab: the reason was not printed", n)
    # The same as a one-shot command (new-user review: only "AuthFailed" was printed).
    n = run.rzk_shell(base, "zkcli-stale", ["ls /"], oneshot=True)
    check(n.rc != 0 and bool(n.grep("SASL authentication failed: ")),
          "one-shot rzk shell with a stale keytab: no reason printed", n)
    # A keyTab that does not exist is named (the library would speak of a ccache).
    missing = os.path.join(run.work, "missing-jaas.conf")
    run.write(missing, jaas("Client", os.path.join(run.work, "no-such.keytab"), ZKCLI_P))
    n = run.rzk_shell(base, "zkcli", ["ls /"], oneshot=True, jaas=missing)
    check(n.rc != 0 and bool(n.grep("no-such.keytab")),
          "rzk shell with a missing keyTab: the file was not named", n)


def run_impl(args, impl, work):
    run = Run(args, impl, work)
    t0 = time.time()
    print(f"== {impl}: work directory {run.work}", flush=True)
    run.setup_kdc()
    try:
        try:
            base = run.start_server("base")
        except Exception as e:
            print(f"FAIL [{impl}] start-up with Kerberos\n" + textwrap.indent(str(e), "    "),
                  flush=True)
            run.results.append(("start-up", "FAIL"))
            return run.results
        cases = [
            ("a  whoami/ACL: zkcli, other, no SASL", lambda: case_a_sasl_identity(run, base)),
            ("b1 zkcli/localhost identity, default", case_b(run, "default", base=base,
                                                             want_host=HOSTCLI_P, want_plain=ZKCLI_P)),
            ("b2 -Dzookeeper.kerberos.removeHostFromPrincipal=true",
             case_b(run, "rmhost", ["zookeeper.kerberos.removeHostFromPrincipal=true"],
                    want_host=ZKCLI_P)),
            ("b3 -Dzookeeper.kerberos.removeRealmFromPrincipal=true",
             case_b(run, "rmrealm", ["zookeeper.kerberos.removeRealmFromPrincipal=true"],
                    want_host="zkcli/localhost", want_plain="zkcli")),
            ("b4 -Dzookeeper.kerberos.remove{Host,Realm}FromPrincipal=true",
             case_b(run, "rmboth", ["zookeeper.kerberos.removeHostFromPrincipal=true",
                                    "zookeeper.kerberos.removeRealmFromPrincipal=true"],
                    want_host="zkcli", want_plain="zkcli")),
            ("b5 zoo.cfg kerberos.remove{Host,Realm}FromPrincipal=true",
             case_b(run, "cfgboth", cfg=["kerberos.removeHostFromPrincipal=true",
                                         "kerberos.removeRealmFromPrincipal=true"],
                    want_host="zkcli")),
            ("b6 -Dkerberos.remove{Host,Realm}FromPrincipal=true (not read)",
             case_b(run, "unprefixed", ["kerberos.removeHostFromPrincipal=true",
                                        "kerberos.removeRealmFromPrincipal=true"],
                    want_host=HOSTCLI_P)),
            ("b7 removeRealmFromPrincipal, default_realm in an included krb5.conf file",
             case_b(run, "includes", ["zookeeper.kerberos.removeRealmFromPrincipal=true"],
                    want_host="zkcli/localhost", want_plain="zkcli",
                    krb5_conf=lambda: krb5_conf_by_includes(run))),
            ("c  zookeeper.superUser=zkcli@EXAMPLE.COM", lambda: case_c_super_user(run)),
            ("d1 stale client keytab", lambda: case_d_stale_client_keytab(run, base)),
            ("a2 server principal without a realm", lambda: case_a_principal_without_realm(run)),
            ("d2 stale server keytab: no start", lambda: case_d_stale_server_keytab(run)),
            ("d6 KRB5_CONFIG without -Djava.security.krb5.conf: no start",
             lambda: case_d_krb5_config_env(run)),
            ("d3 sessionRequireClientSASLAuth=true, client without SASL",
             case_d_require_sasl(run, "requiresasl", ["zookeeper.sessionRequireClientSASLAuth=true"])),
            ("d4 enforce.auth.enabled + schemes=sasl, client without SASL",
             case_d_require_sasl(run, "enforce", ["zookeeper.enforce.auth.enabled=true",
                                                  "zookeeper.enforce.auth.schemes=sasl"])),
            ("e  kazoo GSSAPI (pure-sasl + kerberos)", lambda: case_e_kazoo(run, base)),
            ("f  rzk shell GSSAPI (rzk-client)", lambda: case_f_rzk_shell(run, base)),
        ]
        if args.only:
            cases = [c for c in cases if args.only in c[0]]
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for f in [pool.submit(run.case, name, fn) for name, fn in cases]:
                f.result()
        run.stop_servers()
        # Last: it re-keys zookeeper/localhost, which would make every other server's keytab stale.
        if not args.only or args.only in "d5 server key rotated after start":
            run.case("d5 server key rotated after start", lambda: case_d_rotated_server_key(run))
    finally:
        run.stop_servers()
        run.kdc.stop()
        print(f"== {impl}: {time.time() - t0:.1f}s", flush=True)
    return run.results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rzk", default=os.path.join(ROOT, "target", "debug", "rzk"))
    ap.add_argument("--apache", default=os.path.join(ROOT, "scripts", "start-apache-zk.sh"))
    ap.add_argument("--impl", choices=("zk", "rzk", "both"), default="both")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--only", help="run only the cases whose name contains this")
    ap.add_argument("--jobs", type=int, default=3, help="cases run at once (default 3)")
    ap.add_argument("--no-skips", action="store_true",
                    help="count a skipped case as a failure (CI: kazoo's GSSAPI must run)")
    args = ap.parse_args()
    args.rzk = os.path.abspath(args.rzk)
    args.apache = os.path.abspath(args.apache)
    for tool in ("kdb5_util", "kadmin.local", "krb5kdc"):
        sbin(tool)
    # The Java client names the server zookeeper/<reverse name of 127.0.0.1> (whether or not
    # zookeeper.sasl.client.canonicalize.hostname is set: InetAddress resolves the literal),
    # and the server's principal is zookeeper/localhost.
    try:
        rname = socket.gethostbyaddr("127.0.0.1")[0]
    except OSError as e:
        rname = f"nothing ({e})"
    if rname != "localhost":
        sys.exit(f"kerberos_test: 127.0.0.1 resolves back to {rname}, not localhost: the Java "
                 "client would ask for a ticket to zookeeper/<that name>; make 'localhost' the "
                 "first name of 127.0.0.1 in /etc/hosts")
    work = tempfile.mkdtemp(prefix="rzk-kerberos-")
    results = []
    t0 = time.time()
    for impl in (("zk", "rzk") if args.impl == "both" else (args.impl,)):
        results += [(impl, n, s) for n, s in run_impl(args, impl, work)]
    passed = sum(1 for r in results if r[2] == "PASS")
    failed = sum(1 for r in results if r[2] == "FAIL")
    skipped = sum(1 for r in results if r[2] == "SKIP")
    if args.no_skips and skipped:
        failed += skipped
    print(f"{passed} passed, {failed} failed, {skipped} skipped ({time.time() - t0:.1f}s)")
    if failed or args.keep:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
