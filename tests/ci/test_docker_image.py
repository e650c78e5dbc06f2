"""The project's image, run as an unprivileged host user: the main job on the built-in demo data, and the recipe on
a CAD1 tree mounted read-only, scoring exactly what the same commands score outside the container.

Opt-in: ``XUMX_DOCKER_IMAGE`` names the image (``ci/docker_image.sh start build`` builds one from a debootstrapped
Debian bookworm base; ``eval "$(ci/docker_image.sh env)"`` exports the variables). ``XUMX_DOCKER`` is the client
(default ``docker``). Without the variable the tests skip; with it, a missing client or image is a failure. Run as
root, the container runs as the host user ``XUMX_CI_USER`` (default ``xumx-ci``), otherwise as the current user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cadenza.scores import read_rows
from data_prep.layouts import write_cad1_tree

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: The image's working directory (the checkout); outputs go to its exp/ folder.
WORKDIR = "/opt/xumx-slicq-v2"
#: The default run name of the recipe (demo weights).
RUN = "cad1_task1/xumx_slicq_v2_demo"
#: 2 songs x 2 listeners of 1.5 s: 4 pairs.
SONGS, LISTENERS, SECONDS = 2, 2, 1.5
#: Per command; the demo job takes about 6 minutes on 2 idle cores, several times that on busy ones.
TIMEOUT_S = 2400


class Docker:
    def __init__(self, client: str, image: str, user: tuple[int, int]):
        self.client, self.image, self.user = client, image, user

    def run(self, *command: str, volumes: dict[Path, str]) -> subprocess.CompletedProcess:
        """``docker run`` of ``command`` (the image's default when empty) as ``self.user``, without network; the
        container is removed also when the run times out."""
        mounts = [arg for host, target in volumes.items() for arg in ("-v", f"{host}:{target}")]
        uid, gid = self.user
        name = f"xumx-test-{uuid.uuid4().hex[:12]}"
        try:
            return subprocess.run(
                [self.client, "run", "--rm", "--name", name, "--network", "none", "--user", f"{uid}:{gid}", *mounts,
                 self.image, *command],
                capture_output=True, text=True, timeout=TIMEOUT_S,
            )
        finally:
            subprocess.run([self.client, "rm", "--force", name], capture_output=True, timeout=120)


def _host_user() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    name = os.environ.get("XUMX_CI_USER", "xumx-ci")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        pytest.fail(f"running as root and the unprivileged host user {name} does not exist (ci/docker_image.sh start)")
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="module")
def docker() -> Docker:
    image = os.environ.get("XUMX_DOCKER_IMAGE")
    if not image:
        pytest.skip("XUMX_DOCKER_IMAGE not set (build an image with ci/docker_image.sh start build)")
    client = os.environ.get("XUMX_DOCKER", "docker")
    if shutil.which(client) is None:
        pytest.fail(f"XUMX_DOCKER_IMAGE={image} but the docker client {client} is not found")
    probe = subprocess.run([client, "image", "inspect", image], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.fail(f"XUMX_DOCKER_IMAGE={image} but the image is not available: {probe.stderr.strip()[:300]}")
    return Docker(client, image, _host_user())


def _output_folder(path: Path, user: tuple[int, int]) -> Path:
    """An empty folder the container user may write (the host user's own folder)."""
    path.mkdir(parents=True)
    os.chown(path, *user)
    return path


def _owners(folder: Path) -> set[tuple[int, int]]:
    return {(path.stat().st_uid, path.stat().st_gid) for path in folder.rglob("*")}


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Mode, modification time and content hash of everything under ``folder``."""
    return {
        str(path.relative_to(folder)): (
            path.stat().st_mode,
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "",
        )
        for path in folder.rglob("*")
    }


def test_recipe_on_mounted_data_scores_as_outside(docker, tmp_path):
    """enhance + evaluate on a read-only CAD1 tree and a separately mounted MUSDB18-HQ folder: outputs on the host
    folder, owned by the host user, scores.csv byte-identical to the same commands outside the container."""
    data = tmp_path / "cadenza"
    task = write_cad1_tree(data, n_train=0, n_valid=SONGS, n_test=0, seconds=SECONDS,
                           listeners_per_split=LISTENERS, seed=11, progress=False)
    musdb = task / "audio" / "musdb18hq"
    before = _snapshot(data)
    out = _output_folder(tmp_path / "exp", docker.user)
    volumes = {data: "/data/cadenza:ro", musdb: "/data/musdb18hq:ro", out: f"{WORKDIR}/exp"}
    settings = [f"path.root=/data/cadenza/{task.relative_to(data)}", "path.music_dir=/data/musdb18hq"]
    for command in ("cadenza.enhance", "cadenza.evaluate"):
        result = docker.run("python", "-m", command, *settings, volumes=volumes)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    assert len(read_rows(out / RUN / "scores.csv")) == SONGS * LISTENERS
    assert (out / RUN / "report.png").is_file()
    assert _owners(out) == {docker.user}
    assert _snapshot(data) == before

    outside = tmp_path / "outside"
    outside.mkdir()
    for command in ("cadenza.enhance", "cadenza.evaluate"):
        subprocess.run([sys.executable, "-m", command, f"path.root={task}", f"path.music_dir={musdb}"],
                       cwd=outside, check=True, capture_output=True, timeout=TIMEOUT_S)
    assert (out / RUN / "scores.csv").read_bytes() == (outside / "exp" / RUN / "scores.csv").read_bytes()


def test_default_command_runs_the_main_job_on_the_demo_data(docker, tmp_path):
    """The image's default command: run_demo.sh on the demo dataset built into the image (3 songs x 3 listeners)."""
    out = _output_folder(tmp_path / "exp", docker.user)
    result = docker.run(volumes={out: f"{WORKDIR}/exp"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert len(read_rows(out / RUN / "scores.csv")) == 9
    assert {"report.json", "report.png", "scores.csv"} <= {p.name for p in (out / RUN).iterdir()}
    assert _owners(out) == {docker.user}
