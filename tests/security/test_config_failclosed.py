"""Start-up fails closed: a security-relevant key rzk does not implement stops `rzk server`
with a non-zero exit and a message naming the key, printed once on stderr. Unknown keys
are warned about, with a did-you-mean. Where Apache ZooKeeper refuses a configuration
too (enforce.auth without a usable scheme), both are checked."""
import os
import subprocess

import pytest

import zkproc
from conftest import (APACHE, KEYSTORE_PW, KINDS, RZK, SASL_PROVIDER, _ports, rzk_env,
                      workdir, write_jaas)

# TLS settings that tls/ reads are tested by tests/tls; refused here: what neither TLS
# nor anything else in rzk can honour.
REFUSED = [
    ("ssl.keyStore.passwrd", KEYSTORE_PW),  # not a TLS key tls/ reads
    ("ssl.quorum.keystore.location", "/etc/zk/keystore.jks"),
    ("kerberos.removeHostFromPrinciple", "true"),  # misspelt Kerberos key
    ("zookeeper.kerberos.canonicalizeHostNames", "false"),
    ("quorum.auth.kerberos.servicePrincipal", "zkquorum/localhost"),
    ("authProvider.1", "org.apache.zookeeper.server.auth.KerberosAuthenticationProvider"),
    ("authProvider.2", "com.example.CustomAuthenticationProvider"),
    ("DigestAuthenticationProvider.digestAlg", "MD2"),
    ("enforce.auth.enable", "true"),  # misspelt security key: refused, not ignored
    ("zookeeper.sessionRequireClientSASLAuht", "true"),
]


def run_rzk(settings, timeout=20, jaas=None, env=None):
    """Runs rzk with zoo.cfg `settings` (and extra environment `env`); returns (exit code
    or None if it kept running, stderr text). A server that starts is stopped."""
    port = next(_ports)
    d = workdir("rzk-cfg")
    settings = list(settings)
    if jaas is not None:
        settings.append("java.security.auth.login.config=" + write_jaas(d, jaas))
    cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *settings)
    return zkproc.run_rzk(RZK, cfg, port, timeout, env={**rzk_env(), **(env or {})})


@pytest.mark.parametrize("key,value", REFUSED, ids=[k for k, _ in REFUSED])
def test_refused_key_stops_startup(key, value):
    code, err = run_rzk([f"{key}={value}"])
    assert code == 2, f"rzk started (or crashed) with {key}; log:\n{err}"
    lines = [l for l in err.splitlines() if key in l]
    assert len(lines) == 1, f"{key} should be named exactly once:\n{err}"
    assert "refusing to start" in lines[0]


def test_unreadable_dynamic_config_file_stops_startup_naming_the_key():
    # dynamicConfigFile is honoured (docs/CONFIG.md); a file that cannot be read stops
    # start-up with an error naming the key and the file.
    code, err = run_rzk(["dynamicConfigFile=/etc/zk/zoo.cfg.dynamic"])
    assert code == 2, f"rzk started (or crashed); log:\n{err}"
    lines = [l for l in err.splitlines() if "dynamicConfigFile" in l]
    assert len(lines) == 1, err
    assert "/etc/zk/zoo.cfg.dynamic" in lines[0] and "cannot read" in lines[0], err


def test_all_refused_keys_named_once():
    code, err = run_rzk(["DigestAuthenticationProvider.digestAlg=MD2",
                         "kerberos.removeRealmFromPrinciple=true",
                         "quorum.auth.kerberos.servicePrincipal=zkquorum/localhost"])
    assert code == 2
    for k in ("DigestAuthenticationProvider.digestAlg", "kerberos.removeRealmFromPrinciple",
              "quorum.auth.kerberos.servicePrincipal"):
        assert err.count(k) == 1, err


@pytest.mark.parametrize("jaas,what", [
    # Kerberos runs (tests/kerberos); a login without the keys a server needs stops it.
    ("Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true "
     "keyTab=\"/etc/zk.keytab\" principal=\"zookeeper/host@EXAMPLE.COM\"; };", "storeKey=true"),
    ("Server { org.example.LdapLoginModule required url=\"ldap://x\"; };", "not supported"),
    ("Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"x\"",
     "line"),
])
def test_jaas_server_section_refused(jaas, what):
    code, err = run_rzk([], jaas=jaas)
    assert code == 2, err
    assert what in err and "JAAS" in err, err
    assert "EXAMPLE.COM" not in err and "ldap://x" not in err and 'user_bob="x"' not in err


def test_missing_jaas_file():
    code, err = run_rzk(["java.security.auth.login.config=/nonexistent/jaas.conf"])
    assert code == 2 and "/nonexistent/jaas.conf" in err, err


def test_harmless_keys_start():
    """Switches set to false, ZooKeeper's NIO factory, tuning knobs: accepted."""
    code, err = run_rzk(["sslQuorum=false", "portUnification=false",
                         "quorum.auth.enableSasl=false", "admin.enableServer=false",
                         "serverCnxnFactory=org.apache.zookeeper.server.NIOServerCnxnFactory",
                         "globalOutstandingLimit=1000", "skipACL=no"])
    assert code is None, err
    assert "accepted without effect" in err


def test_unknown_key_warns_with_did_you_mean():
    code, err = run_rzk(["clientport=2181", "tickTme=2000", "totally.unknown.thing=1"])
    assert code is None, err
    warn = [l for l in err.splitlines() if "WARN" in l]
    assert any("clientport" in l and "did you mean clientPort" in l for l in warn), err
    assert any("tickTme" in l and "did you mean tickTime" in l for l in warn), err
    assert any("totally.unknown.thing" in l for l in warn), err


def test_corrected_value_warns():
    code, err = run_rzk(["autopurge.snapRetainCount=1"])
    assert code is None, err
    assert any("WARN" in l and "autopurge.snapRetainCount" in l for l in err.splitlines()), err


def test_secret_values_not_echoed():
    code, err = run_rzk([f"SASLAuthenticationProvider.superPassword={KEYSTORE_PW}",
                         f"my.app.secretToken={KEYSTORE_PW}", "enforce.auth.enabled=true"])
    assert code == 2 and "enforce.auth" in err, err
    assert KEYSTORE_PW not in err


# ZooKeeper refuses these too: compare.
BOTH_REFUSE = [
    (["enforce.auth.enabled=true"], "enforce.auth.schemes"),
    (["enforce.auth.enabled=true", "enforce.auth.schemes=sasl"], "sasl"),
    (["enforce.auth.enabled=true", "enforce.auth.schemes=kerberos"], "kerberos"),
]


@pytest.mark.parametrize("settings,named", BOTH_REFUSE, ids=["no-schemes", "no-sasl-provider",
                                                             "unknown-scheme"])
@pytest.mark.parametrize("kind", KINDS)
def test_unusable_enforcement_refused(kind, settings, named):
    if kind == "rzk":
        code, err = run_rzk(settings)
        assert code == 2 and named in err, err
    else:
        port = next(_ports)
        d = workdir("apache-cfg")
        try:
            zkproc.start_apache(APACHE, port, d, *settings, env={"ZK_START_TIMEOUT": "30"}).stop()
            started = True
        except subprocess.CalledProcessError:
            started = False
        assert not started, "Apache ZooKeeper started"
        with open(os.path.join(d, "zookeeper.log")) as f:
            assert named in f.read()


def test_sasl_provider_with_jaas_starts():
    from conftest import JAAS_SERVER
    code, err = run_rzk(["authProvider.1=" + SASL_PROVIDER], jaas=JAAS_SERVER)
    assert code is None, err
    assert "SASL DIGEST-MD5 authentication on, 4 user(s)" in err


def test_server_jvmflags_are_read(tmp_path):
    """ZooKeeper's SERVER_JVMFLAGS -D properties: the JAAS file and an auth provider given
    there take effect; -X flags and foreign properties are ignored."""
    from conftest import JAAS_SERVER
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS_SERVER)
    flags = (f"-Xmx512m -Djava.security.auth.login.config={jaas} -Dfile.encoding=UTF-8 "
             f"-Dzookeeper.authProvider.1={SASL_PROVIDER}")
    code, err = run_rzk([], env={"SERVER_JVMFLAGS": flags})
    assert code is None, err
    assert "SASL DIGEST-MD5 authentication on, 4 user(s)" in err, err
    assert "no authProvider" not in err, err
    # A refused property is refused from there too.
    code, err = run_rzk(
        [], env={"SERVER_JVMFLAGS": "-Dzookeeper.kerberos.removeRealmFromPrinciple=true"})
    assert code == 2 and "zookeeper.kerberos.removeRealmFromPrinciple" in err, err


@pytest.mark.parametrize("settings,named", [
    (["quorum.auth.serverRequireSasl=true"], "quorum.auth.serverRequireSasl"),
    (["quorum.auth.enableSasl=true", "quorum.auth.serverRequireSasl=true"],
     "quorum.auth.learnerRequireSasl"),
    (["quorum.auth.enableSasl=yes"], "quorum.auth.enableSasl"),
])
def test_quorum_sasl_settings_checked_as_zookeeper(settings, named):
    """quorum.auth.*: ZooKeeper's consistency checks stop start-up, naming the key."""
    code, err = run_rzk(settings)
    assert code == 2, f"rzk started (or crashed); log:\n{err}"
    assert named in err, err


@pytest.mark.parametrize("jaas,named", [
    (None, "java.security.auth.login.config"),
    ("QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required "
     "user_p=\"pw\"; };", "QuorumLearner"),
])
def test_quorum_sasl_member_needs_its_jaas_sections(jaas, named):
    """An ensemble member with quorum.auth.enableSasl=true and no usable JAAS sections
    does not start (ZooKeeper's QuorumPeer fails to create its SASL login)."""
    port = next(_ports)
    d = workdir("rzk-qsasl")
    settings = ["quorum.auth.enableSasl=true"]
    if jaas is not None:
        settings.append("java.security.auth.login.config=" + write_jaas(d, jaas))
    cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *settings,
                              servers=zkproc.server_lines((1, 2), port + 1, port + 3),
                              myid=1)
    code, err = zkproc.run_rzk(RZK, cfg, port, 20, env=rzk_env())
    assert code == 2, f"rzk started (or crashed); log:\n{err}"
    assert named in err and "pw" not in err.replace("password", ""), err
