"""Secrets never leave: run rzk with every test password of the suite (JAAS users,
superPassword, a superDigest password, secret-named unknown keys), exercise successful and
failed logins and every four-letter word, then grep every log rzk wrote in this suite
(this file runs last), and the four-letter-word output, for any of them: zero hits."""
import glob
import os
import subprocess

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError

import zkproc
from conftest import (BOB_PW, EXTRA_SECRET, JAAS_SERVER, SASL_PROVIDER, SECRETS,
                      SUPER_DIGEST_PW, SUPER_SASL_PW, WORKDIR, digest_of, expect_refused_start,
                      start_server)

FOUR_LETTER = ["conf", "envi", "cons", "stat", "srvr", "mntr", "dump", "wchs", "wchc",
               "wchp", "dirs", "ruok", "isro", "gtmk", "hash"]


@pytest.fixture(scope="module")
def rzk():
    s = start_server("rzk", "secrets", [
        "authProvider.1=" + SASL_PROVIDER,
        "SASLAuthenticationProvider.superPassword=" + SUPER_SASL_PW,
        "my.app.secret=" + EXTRA_SECRET,
        "app.dbPassword=" + EXTRA_SECRET,
        "DigestAuthenticationProvider.superDigest=" + digest_of("super:" + SUPER_DIGEST_PW),
    ], jaas=JAAS_SERVER)
    yield s
    s.stop()


def test_exercise_and_grep(rzk):
    ok = KazooClient(hosts=rzk.hosts, sasl_options={
        "mechanism": "DIGEST-MD5", "username": "bob", "password": BOB_PW},
        auth_data=[("digest", "super:" + SUPER_DIGEST_PW)])
    ok.start(timeout=15)
    ok.ensure_path("/secrets-test")
    for pw in (SUPER_SASL_PW, "wrong-" + BOB_PW):
        bad = KazooClient(hosts=rzk.hosts, connection_retry={"max_tries": 0}, sasl_options={
            "mechanism": "DIGEST-MD5", "username": "bob", "password": pw})
        expect_refused_start(bad, AuthFailedError)
        bad.stop()
        bad.close()
    outputs = {w: zkproc.four(rzk.port, w) for w in FOUR_LETTER}
    ok.delete("/secrets-test")
    ok.stop()
    ok.close()
    assert "clientPort" in outputs["conf"] and "Environment" in outputs["envi"]
    for w, text in outputs.items():
        for s in SECRETS:
            assert s not in text, f"{w} output contains a test secret"

    logs = sorted(glob.glob(os.path.join(WORKDIR, "rzk-*", "*.log")))
    assert logs, "no rzk logs found"
    hits = []
    for path in logs:
        with open(path, errors="replace") as f:
            text = f.read()
        hits += [(path, s) for s in SECRETS if s in text]
    assert not hits, f"secrets found in rzk logs: {hits}"
