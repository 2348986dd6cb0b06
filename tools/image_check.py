"""Build the image the Dockerfile describes without Docker, and prove it starts (``make image-check``).

There is no Docker engine on the development machines, so this plays the Dockerfile itself on a local Debian
bookworm root file system (``debootstrap --variant=minbase``, the base of ``python:3.11-slim``), with Debian's
``python3.11`` and ``pip`` standing in for the official image's Python (no ``EXTERNALLY-MANAGED`` marker, no
apt lists: as in the official image, an ``apt-get install`` needs its ``apt-get update``). Every stage starts from
a copy of that base; its instructions run as Docker would run them: ``RUN`` with ``/bin/sh -c`` in a chroot as
the stage's ``USER`` with its ``ENV`` and ``WORKDIR``; ``COPY`` from the build context or ``--from`` an earlier
stage. So the system packages installed are the ones the Dockerfile's own ``apt-get install`` line names
(printed before the build), and the wheels are built and installed by its own ``pip`` lines.

Then, in the last stage, as its user: ``ENTRYPOINT --version``, ``ENTRYPOINT worker --help`` and
``python -c "import lightgbm"``; with ``--emulators``, ``pytest tests/cloud/test_image.py`` runs a worker and
``serve`` of the image against the Google Cloud emulators on loopback (the chroot shares the network).

Needs root (debootstrap, chroot, bind mounts), the network of the package registries (Debian's mirror as apt is
configured here, PyPI), and ~1.5 GB under the cache folder. The base is cached (``--cache``, default
``/tmp/nbaprops-image-check``) and reused while the mirror and the stand-in packages stay the same; stages are
rebuilt every run. Exits 0 when the image starts, 1 (with what failed) when it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
# Debian's stand-in for python:3.11-slim's /usr/local Python: the interpreter with venv/ensurepip (`python -m
# build` makes an isolated environment), pip (whose console scripts land in /usr/local/bin as in the official
# image), `python` on PATH, and TLS roots for PyPI.
STAND_IN_PACKAGES = ("python3.11", "python3.11-venv", "python3-pip", "python-is-python3", "ca-certificates")
BASE_RECIPE = 2  # bump when base_root changes what it builds: the cached base is rebuilt
BASE_IMAGE = re.compile(r"^python:3\.11(\.\d+)?-slim(-bookworm)?$")
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
# Only /proc: debootstrap made the device nodes, and a stage's root is deleted after the run (never with a
# host file system mounted in it: see remove_root).
MOUNTS = ("proc",)


class CheckError(Exception):
    """The image did not build or did not start; the message says which step and what it printed."""


def say(message: str) -> None:
    print(f"image-check: {message}", flush=True)


# -- where Debian comes from: the mirror apt uses on this machine --------------------------------------------
def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The first ``…/debian`` URI apt is configured with for ``bookworm`` (deb822 ``.sources`` or one-line
    ``.list`` files), so no host name is written into the repository."""
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.sources"))]
    files += sorted((apt_dir / "sources.list.d").glob("*.list"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text()
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (key.strip().lower(), value.strip())
                    for key, _, value in (
                        line.partition(":") for line in stanza.splitlines() if not line.startswith("#")
                    )
                    if value
                )
                if SUITE in fields.get("suites", "").split() and "enabled: no" not in stanza.lower():
                    for uri in fields.get("uris", "").split():
                        if uri.rstrip("/").endswith("/debian"):
                            return uri
        else:
            for line in text.splitlines():
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 3 and parts[0] == "deb":
                    uri, suite = (parts[2], parts[3]) if parts[1].startswith("[") else (parts[1], parts[2])
                    if suite == SUITE and uri.rstrip("/").endswith("/debian"):
                        return uri
    raise CheckError(f"no Debian {SUITE} mirror in {apt_dir}/sources.list*; configure apt first")


# -- the Dockerfile ------------------------------------------------------------------------------------------
@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile: instructions with their continuation lines joined, comments dropped."""
    stages: list[Stage] = []
    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped, as Docker does
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append((start, buffer + stripped))
        buffer = ""
    if buffer:
        logical.append((start, buffer))
    for number, line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            raise CheckError(f"Dockerfile line {number}: {keyword} before FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments.strip(), number))
    if not stages:
        raise CheckError("the Dockerfile has no FROM")
    return stages


def apt_packages(stage: Stage) -> list[str]:
    """The packages a stage's ``apt-get install`` commands name (what the check installs is what it reads)."""
    packages: list[str] = []
    for instruction in stage.instructions:
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", instruction.arguments):
            words = shlex.split(command)
            if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
                after = words[words.index("install") + 1 :]
                packages += [w for w in after if not w.startswith("-")]
    return packages


# -- root file systems ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def mounted(root: Path) -> Iterator[None]:
    """The host's ``/proc`` inside ``root`` while commands run there."""
    done: list[Path] = []
    try:
        for name in MOUNTS:
            target = root / name
            target.mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", name, name, str(target)], check=True)
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", str(target)], check=False)


def remove_root(folder: Path) -> None:
    """Delete a work folder, refusing while anything is mounted below it (it would delete through the mount)."""
    below = str(folder.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    busy = [m for m in mounts if (m + "/").startswith(below)]
    if busy:
        raise CheckError(f"{busy[0]} is still mounted; unmount it, then delete {folder}")
    shutil.rmtree(folder, ignore_errors=True)


def in_root(
    root: Path,
    command: Sequence[str],
    *,
    env: dict[str, str],
    user: str = "root",
    cwd: str = "/",
    check: bool = True,
    capture: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` inside ``root`` (chroot) as ``user`` in ``cwd`` with exactly ``env``."""
    uid, gid, home = _account(root, user)
    environment = {"HOME": home, **env}
    script = f"cd {shlex.quote(cwd)} && exec " + shlex.join(command)
    argv = ["chroot", f"--userspec={uid}:{gid}", str(root), "/bin/sh", "-c", script]
    result = subprocess.run(
        ["env", "-i", *(f"{k}={v}" for k, v in environment.items()), *argv],
        text=True,
        capture_output=capture,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        shown = (result.stdout or "") + (result.stderr or "") if capture else ""
        raise CheckError(f"`{shlex.join(command)}` exited {result.returncode}\n{shown}".rstrip())
    return result


def _account(root: Path, user: str) -> tuple[int, int, str]:
    name, _, group = user.partition(":")
    for line in (root / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if name in (parts[0], parts[2]):
            return int(parts[2]), int(group or parts[3]), parts[5]
    raise CheckError(f"USER {user}: no such user in the image")


def _machine_network(root: Path) -> None:
    """This machine's resolver and extra certificate authorities (a registry proxy may present its own), as a
    Docker build on it would be given them."""
    shutil.copyfile("/etc/resolv.conf", root / "etc" / "resolv.conf")
    extra = root / "usr" / "local" / "share" / "ca-certificates"
    extra.mkdir(parents=True, exist_ok=True)
    for certificate in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copyfile(certificate, extra / certificate.name)


def base_root(cache: Path, mirror: str) -> Path:
    """The cached stand-in for python:3.11-slim, built on first use (debootstrap + Debian's Python)."""
    recipe = [BASE_RECIPE, SUITE, mirror, STAND_IN_PACKAGES]
    key = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]
    root = cache / f"base-{SUITE}-{key}"
    if (root / ".complete").exists():
        say(f"base: cached {root}")
        return root
    if shutil.which("debootstrap") is None:
        say("installing debootstrap (apt-get)")
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"], check=True)
    building = root.with_name(root.name + ".tmp")
    remove_root(building)
    building.mkdir(parents=True)
    say(f"base: debootstrap --variant=minbase {SUITE} from apt's mirror (a minute or two)")
    started = time.monotonic()
    log = cache / "debootstrap.log"
    with log.open("w") as output:
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(building), mirror],
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise CheckError(f"debootstrap exited {done.returncode}; see {log}")
    _machine_network(building)
    env = {**BASE_ENV, "DEBIAN_FRONTEND": "noninteractive"}
    with mounted(building):
        in_root(building, ["apt-get", "update", "-q"], env=env)
        in_root(
            building,
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *STAND_IN_PACKAGES],
            env=env,
        )
        in_root(building, ["update-ca-certificates"], env=env)
    for marker in (building / "usr" / "lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()  # the official image's Python takes `pip install` without --break-system-packages
    shutil.rmtree(building / "var" / "lib" / "apt" / "lists")
    (building / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)
    gomp = sorted(p for p in building.rglob("libgomp.so*") if "proc" not in p.parts)
    if gomp:  # the check would prove nothing: python:3.11-slim has no libgomp
        raise CheckError(f"the stand-in base already has {gomp[0]}; it must not (python:3.11-slim has none)")
    (building / ".complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    building.rename(root)
    say(f"base: built in {time.monotonic() - started:.0f} s, cached at {root}")
    return root


# -- playing a stage -----------------------------------------------------------------------------------------
@dataclass
class Image:
    root: Path
    env: dict[str, str]
    user: str = "root"
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def _exec_form(arguments: str) -> list[str]:
    if arguments.startswith("["):
        value = json.loads(arguments)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", arguments]


def _copy(sources: Sequence[Path], dest: Path, *, into: bool) -> None:
    """Docker's COPY: a folder's contents go to ``dest``; a file goes to ``dest`` or, ``into`` (several sources,
    or ``dest`` ends with ``/``), into it."""
    for source in sources:
        if not source.exists():
            raise CheckError(f"COPY: {source.name} does not exist in the build context or stage")
        if source.is_dir():
            shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
        else:
            target = dest / source.name if into or dest.is_dir() else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def play(
    stage: Stage, index: int, *, base: Path, work: Path, context: Path, built: dict[str, Image]
) -> Image:
    """Run a stage's instructions on a fresh copy of the base."""
    if not BASE_IMAGE.match(stage.base):
        raise CheckError(f"FROM {stage.base}: this check stands in for python:3.11-slim only")
    root = work / f"stage-{index}"
    remove_root(root)
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(root)], check=True)
    image = Image(root, dict(BASE_ENV))
    say(f"stage {index} ({stage.name or 'final'}) FROM {stage.base}")
    with mounted(root):
        for instruction in stage.instructions:
            keyword, arguments = instruction.keyword, instruction.arguments
            say(f"  line {instruction.line}: {keyword} {arguments[:110]}")
            if keyword == "RUN":
                in_root(root, ["/bin/sh", "-c", arguments], env=image.env, user=image.user, cwd=image.workdir)
            elif keyword == "WORKDIR":
                image.workdir = os.path.normpath(os.path.join(image.workdir, arguments))
                (root / image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                words = shlex.split(arguments)
                origin = context
                options = [w for w in words if w.startswith("--")]
                words = [w for w in words if not w.startswith("--")]
                for option in options:
                    if option.startswith("--from="):
                        name = option.removeprefix("--from=")
                        if name not in built:
                            raise CheckError(f"COPY {option}: no earlier stage of that name")
                        origin = built[name].root
                    else:
                        raise CheckError(f"COPY {option}: not supported by this check")
                *sources, dest = words
                in_stage = os.path.normpath(os.path.join(image.workdir, dest))
                resolved = [origin / s.lstrip("/") for s in sources]
                into = len(sources) > 1 or dest.endswith("/")
                _copy(resolved, root / in_stage.lstrip("/"), into=into)
            elif keyword == "ENV":
                words = shlex.split(arguments)
                if words and "=" not in words[0]:
                    image.env[words[0]] = " ".join(words[1:])
                else:
                    for word in words:
                        key, _, value = word.partition("=")
                        image.env[key] = value
            elif keyword == "USER":
                image.user = arguments
                _account(root, arguments)
            elif keyword == "ENTRYPOINT":
                image.entrypoint = _exec_form(arguments)
            elif keyword == "CMD":
                image.cmd = _exec_form(arguments)
            elif keyword in ("LABEL", "EXPOSE", "ARG", "STOPSIGNAL", "HEALTHCHECK"):
                pass  # nothing to run
            else:
                raise CheckError(
                    f"Dockerfile line {instruction.line}: {keyword} is not supported by this check"
                )
    if stage.name:
        built[stage.name] = image
    built[str(index)] = image
    return image


def start_checks(image: Image) -> list[tuple[str, list[str]]]:
    return [
        ("version", [*image.entrypoint, "--version"]),
        ("worker --help", [*image.entrypoint, "worker", "--help"]),
        ("import lightgbm", ["python", "-c", "import lightgbm; print('lightgbm', lightgbm.__version__)"]),
    ]


def run_checks(image: Image, packages: Sequence[str]) -> None:
    """The image's start commands, as its user; and the system packages its apt-get line names, installed."""
    failed: list[str] = []
    for package in packages:
        status = in_root(
            image.root, ["dpkg-query", "-W", "-f=${Status}", package], env=BASE_ENV, check=False, capture=True
        )
        if status.stdout.strip() != "install ok installed":
            failed.append(f"system package {package} not installed")
    say(f"system packages the Dockerfile names: {', '.join(packages) or '(none)'}; installed: {not failed}")
    with mounted(image.root):
        for label, command in start_checks(image):
            result = in_root(
                image.root,
                command,
                env=image.env,
                user=image.user,
                cwd=image.workdir,
                check=False,
                capture=True,
                timeout=300,
            )
            output = (result.stdout + result.stderr).strip()
            last = output.splitlines()[-1] if output else ""
            if result.returncode == 0:
                say(f"start: {label}: ok ({output.splitlines()[0][:100] if output else 'no output'})")
            else:
                say(f"start: {label}: FAILED (exit {result.returncode}): {last}")
                failed.append(f"{label}: {last}")
    if failed:
        raise CheckError("the image does not start: " + "; ".join(failed))


def run_emulator_checks(image: Image, python: Path) -> None:
    """A worker and `serve` of the image against the emulators (tests/cloud/test_image.py, via pytest)."""
    env = {**os.environ, "NBAPROPS_IMAGE_ROOT": str(image.root), "NBAPROPS_IMAGE_USER": image.user}
    env["NBAPROPS_IMAGE_ENV"] = json.dumps(image.env)
    env["NBAPROPS_IMAGE_ENTRYPOINT"] = json.dumps(image.entrypoint)
    env["PYTHONPATH"] = str(REPO / "src")  # the tests' helpers import nbaprops from this checkout
    command = [
        str(python),
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        "tests/cloud/test_image.py",
    ]
    say("emulators: " + shlex.join(command[1:]))
    if subprocess.run(command, cwd=REPO, env=env, check=False).returncode != 0:
        raise CheckError("the image's worker or serve failed against the emulators (pytest output above)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dockerfile", type=Path, default=REPO / "Dockerfile")
    parser.add_argument(
        "--context", type=Path, default=REPO, help="the build context (default: the repository)"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/nbaprops-image-check"))
    parser.add_argument(
        "--emulators", action="store_true", help="also run a worker and serve on the emulators"
    )
    parser.add_argument("--keep", action="store_true", help="keep the stages' root file systems")
    parser.add_argument(
        "--python",
        type=Path,
        default=REPO / ".venv" / "bin" / "python",
        help="the Python with the dev extras that runs the emulator test (default: .venv/bin/python)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("Error: image-check needs root (debootstrap, chroot and bind mounts)", file=sys.stderr)
        return 1
    started = time.monotonic()
    work = args.cache / f"run-{os.getpid()}"
    try:
        stages = parse_dockerfile(args.dockerfile.read_text())
        say(
            f"{args.dockerfile.name}: {len(stages)} stage(s); system packages of the runtime stage: "
            f"{' '.join(apt_packages(stages[-1])) or '(none)'}"
        )
        base = base_root(args.cache, debian_mirror())
        built: dict[str, Image] = {}
        image = None
        for index, stage in enumerate(stages):
            image = play(stage, index, base=base, work=work, context=args.context.resolve(), built=built)
        assert image is not None
        run_checks(image, apt_packages(stages[-1]))
        if args.emulators:
            run_emulator_checks(image, args.python)
    except (CheckError, subprocess.CalledProcessError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        say(f"FAILED after {time.monotonic() - started:.0f} s")
        return 1
    finally:
        if not args.keep:
            remove_root(work)
    say(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
