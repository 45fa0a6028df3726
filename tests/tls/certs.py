"""Test certificates for the TLS suites, made with Debian's openssl and keytool.

make(dir) writes, in `dir`:
  ca.pem / ca.key                     the test CA
  other-ca.pem                        a CA nobody trusts
  server.*                            CN=localhost, SAN IP:127.0.0.1 + DNS:localhost
  client.*                            C=US, O=Example, Inc, OU=eng, CN=client one
  admin.*                             CN=admin (the x509 super user in the tests)
  rogue.*                             CN=rogue, signed by other-ca (must be refused)
  peerdns.*                           CN=peer, SAN DNS:localhost only (peers verified by name)
For every leaf NAME: NAME.key (PKCS#8, unencrypted), NAME.pem (certificate),
NAME-keystore.pem (key + certificate, ZooKeeper's PEM key store), NAME.p12 and
NAME.jks (password PASSWORD). Trust stores: trust.jks, trust.p12 (keytool, password
PASSWORD) and ca.pem. Every leaf has serverAuth and clientAuth (quorum peers are both).
Returns a dict of the subject names ZooKeeper's x509 provider prints for each leaf.
"""
import os
import subprocess

PASSWORD = "testpass"

SUBJECTS = {
    "server": ("/CN=localhost", "CN=localhost"),
    "client": ("/C=US/O=Example, Inc/OU=eng/CN=client one", "CN=client one,OU=eng,O=Example\\, Inc,C=US"),
    "admin": ("/O=rzk/CN=admin", "CN=admin,O=rzk"),
    "rogue": ("/CN=rogue", "CN=rogue"),
    "peerdns": ("/CN=peer", "CN=peer"),
}
# Subject alternative names per leaf (default: IP:127.0.0.1 and DNS:localhost); peerdns
# names only the host name, so peers must be verified by name.
SANS = {"peerdns": "DNS:localhost"}


def _run(*cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ca(d, name, subject):
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.pem", "-days", "3", "-subj", subject,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d, name, subject, ca, san="IP:127.0.0.1,DNS:localhost"):
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.csr", "-subj", subject, cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName={san}\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "basicConstraints=CA:FALSE\n")
    _run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
         "-CAcreateserial", "-out", f"{name}.pem", "-days", "3", "-extfile", f"{name}.ext", cwd=d)
    with open(os.path.join(d, f"{name}-keystore.pem"), "w") as out:
        for part in (f"{name}.key", f"{name}.pem"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    _run("openssl", "pkcs12", "-export", "-in", f"{name}.pem", "-inkey", f"{name}.key",
         "-certfile", f"{ca}.pem", "-name", name, "-out", f"{name}.p12",
         "-passout", f"pass:{PASSWORD}", cwd=d)
    _run("keytool", "-importkeystore", "-noprompt", "-srckeystore", f"{name}.p12",
         "-srcstoretype", "PKCS12", "-srcstorepass", PASSWORD, "-destkeystore", f"{name}.jks",
         "-deststoretype", "JKS", "-deststorepass", PASSWORD, "-destkeypass", PASSWORD, cwd=d)


def make(d):
    """Writes every file listed in the module doc into `d`; returns {leaf: subject name}."""
    os.makedirs(d, exist_ok=True)
    _ca(d, "ca", "/CN=rzk test CA")
    _ca(d, "other-ca", "/CN=untrusted CA")
    for name, (subj, _) in SUBJECTS.items():
        _leaf(d, name, subj, "other-ca" if name == "rogue" else "ca",
              SANS.get(name, "IP:127.0.0.1,DNS:localhost"))
    for store in ("JKS", "PKCS12"):
        ext = "jks" if store == "JKS" else "p12"
        _run("keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem",
             "-keystore", f"trust.{ext}", "-storetype", store, "-storepass", PASSWORD, cwd=d)
    return {name: rfc2253 for name, (_, rfc2253) in SUBJECTS.items()}


if __name__ == "__main__":
    import sys
    print(make(sys.argv[1] if len(sys.argv) > 1 else "certs"))
