"""Remote jobs over SSH against a REAL sshd on loopback (throwaway host and user keys, free port), started here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from pytest_aiotbench.targets import TargetError, resolve_target

from tests.helpers.adbdevice.jobs import RecordingTiming, host_topk, make_job, shared_model
from tests.helpers.sshd import SshdUnavailable, free_port, start_sshd, stop_sshd

pytestmark = pytest.mark.device

@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    try:
        proc, info = start_sshd(d)
    except SshdUnavailable as exc:
        pytest.skip(str(exc))
    board = d / "board"
    board.mkdir()
    yield {**info, "board": board}
    stop_sshd(proc)


def ssh_target(sshd, **options):
    return resolve_target(sshd["spec"], key_filename=sshd["key"], known_hosts=sshd["known_hosts"],
                          workdir_base=str(sshd["board"]), python=sys.executable, io_timeout_s=10, **options)


def test_ssh_job_matches_host(sshd):
    target = ssh_target(sshd)
    facts = target.describe()
    assert facts["cores"] >= 1 and facts["abi"] and facts["os"]
    job = make_job(shared_model(), images=12)
    timing = RecordingTiming()
    m = target.run(job, timing)
    np.testing.assert_array_equal(m.topk, host_topk(job))
    assert timing.recorded == m.latencies_s and m.timed_on == "device"
    assert list(sshd["board"].iterdir()) == []


def test_ssh_hostile_model_name_cannot_inject(sshd, tmp_path):
    hostile = tmp_path / "m;touch PWNED;$(touch PWNED2).tflite"
    shutil.copy(shared_model(), hostile)
    m = ssh_target(sshd).run(make_job(hostile, images=2), RecordingTiming())
    assert m.topk.shape == (2, 5)
    assert not list(sshd["board"].rglob("PWNED*")) and not list(tmp_path.rglob("PWNED*"))
    assert not os.path.exists(os.path.expanduser("~/PWNED")) and not os.path.exists(os.path.expanduser("~/PWNED2"))


def test_ssh_unknown_host_key_is_refused(sshd, tmp_path):
    (tmp_path / "empty_known_hosts").write_text("")
    target = resolve_target(sshd["spec"], key_filename=sshd["key"],
                            known_hosts=str(tmp_path / "empty_known_hosts"), io_timeout_s=10)
    with pytest.raises(TargetError, match="host key not trusted") as err:
        target.describe()
    assert "\n" not in str(err.value)


def test_ssh_wrong_key_fails_one_line(sshd, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True,
                   timeout=30)
    target = resolve_target(sshd["spec"], key_filename=str(tmp_path / "other"), known_hosts=sshd["known_hosts"],
                            io_timeout_s=10)
    with pytest.raises(TargetError, match="key authentication failed"):
        target.describe()


def test_ssh_dead_port_fails_fast():
    start = time.monotonic()
    target = resolve_target(f"ssh://nobody@127.0.0.1:{free_port()}", io_timeout_s=5)
    with pytest.raises(TargetError, match="cannot connect"):
        target.run(make_job(shared_model(), images=1), RecordingTiming())
    assert time.monotonic() - start < 10
