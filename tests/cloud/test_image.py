"""The image `make image-check` built runs a slate against the emulators: its `serve` (the coordinator) and its
`worker`, each in the image's root file system (chroot, as the image's user, with the image's environment and
entrypoint), the emulators on loopback.

Skipped unless ``tools/image_check.py --emulators`` runs it (it sets ``NBAPROPS_IMAGE_ROOT`` and the image's
user, environment and entrypoint); needs root for chroot and a bind mount. The deployment's folder (inputs file
and models) is bind-mounted into the image, as a volume would be.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.cloud.conftest import SMALL_SLATE, Deployment, assert_cloud_invariants
from tests.service.conftest import KEYS, free_port, wait_batch, wait_for

from nbaprops.storage import open_gcp

pytestmark = [
    pytest.mark.cloud,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("NBAPROPS_IMAGE_ROOT"), reason="`make image-check` runs it in the image it built"
    ),
]
INSIDE = "/mnt/nbaprops-deployment"  # where the deployment's folder appears in the image


@pytest.fixture
def image_root(deployment: Deployment) -> Iterator[Path]:
    root = Path(os.environ["NBAPROPS_IMAGE_ROOT"])
    folder = deployment.db.parent
    target = root / INSIDE.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    for path in (folder, *folder.rglob("*")):  # the image's user (not root) reads and writes it
        path.chmod(0o777 if path.is_dir() else 0o666)
    subprocess.run(["mount", "--bind", str(folder), str(target)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", str(target)], check=False)


def in_image(
    root: Path, deployment: Deployment, log: Path, *args: str, **env: str
) -> subprocess.Popen[bytes]:
    """``ENTRYPOINT args`` in the image as its user, with its environment plus the deployment's."""
    image_env: dict[str, str] = json.loads(os.environ["NBAPROPS_IMAGE_ENV"])
    entrypoint: list[str] = json.loads(os.environ["NBAPROPS_IMAGE_ENTRYPOINT"])
    user = os.environ.get("NBAPROPS_IMAGE_USER", "root")
    ids = next(
        line.split(":")[2:4]
        for line in (root / "etc" / "passwd").read_text().splitlines()
        if line.split(":")[0] == user or line.split(":")[2] == user
    )
    environment = {
        **image_env,
        **{k: v for k, v in deployment.env.items() if k not in ("NBAPROPS_DATA_DIR",)},
        "HOME": f"/home/{user}" if user != "root" else "/root",
        "NBAPROPS_DATA_DIR": f"{INSIDE}/models",
        "NBAPROPS_DB_PATH": f"{INSIDE}/{deployment.db.name}",
        **env,
    }
    command = ["chroot", f"--userspec={ids[0]}:{ids[1]}", str(root), *entrypoint, *args]
    return subprocess.Popen(
        ["env", "-i", *(f"{k}={v}" for k, v in environment.items()), *command],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def test_the_images_serve_and_worker_run_a_slate_on_the_emulators(
    deployment: Deployment, image_root: Path
) -> None:
    """Before libgomp1 was in the Dockerfile, both died at start on `import lightgbm` (OSError: libgomp.so.1)."""
    folder = deployment.db.parent
    port = free_port()
    serve = in_image(
        image_root,
        deployment,
        folder / "image-serve.log",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        NBAPROPS_API_KEYS=",".join(KEYS),
        NBAPROPS_WORKERS="0",
    )
    worker = in_image(image_root, deployment, folder / "image-worker.log", "worker", "--json")
    backend = open_gcp(deployment.settings)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEYS[0]}, timeout=60
        ) as client:

            def ready() -> bool:
                assert serve.poll() is None, (folder / "image-serve.log").read_text()[-3000:]
                try:
                    return client.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, timeout=180, interval=0.5)
            started = client.post("/v1/batches", json={"game_date": SMALL_SLATE})
            assert started.status_code in (200, 201, 202), started.text
            body = wait_batch(client, started.json()["batch_id"], timeout=600)
        assert body["state"] == "complete", body
        assert body["requests"]["done"] > 10
        assert worker.poll() is None, (folder / "image-worker.log").read_text()[-3000:]
        assert_cloud_invariants(backend, body["batch_id"])
    finally:
        backend.close()
        for process in (worker, serve):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
