"""Every ``gcloud`` line of docs/cloud.md is one gcloud accepts (issue 22, item 5).

The lines are taken from the document's code blocks (continuations joined), their shell variables replaced by
the values the document itself assigns (``PROJECT=my-project …``; a command substitution becomes a sample
value), split as the shell would, and parsed by gcloud's own argument parser (``tests/cloud/gcloud_parse.py``,
run by the SDK's bundled Python) — nothing is run: no API request, no credentials (an empty ``CLOUDSDK_CONFIG``),
and, where ``unshare`` can make one, inside a network namespace with no network at all. So a command, flag or
choice that gcloud does not know cannot be documented: the old ``--enable-collection-group-scope`` line fails.
Skips, saying why, where gcloud is absent.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.emulators.google import gcloud_info

pytestmark = [pytest.mark.cloud]

DOC = Path(__file__).resolve().parents[2] / "docs" / "cloud.md"
PARSER = Path(__file__).with_name("gcloud_parse.py")
SAMPLE = "123456789"  # what a command substitution ($(...)) stands for


def _sdk() -> tuple[str, Path] | None:
    """gcloud's Python and the SDK's ``lib`` folder, or None."""
    info = gcloud_info("basic.python_location", "installation.sdk_root")
    return (info[0], Path(info[1]) / "lib") if info else None


def doc_lines(text: str) -> list[str]:
    """The ``gcloud`` and ``bq`` command lines of the code blocks of ``text``, continuations joined."""
    lines: list[str] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line.strip() for line in joined.splitlines() if re.match(r"\s*(gcloud|bq)\s", line)]
    return lines


def doc_variables(text: str) -> dict[str, str]:
    """The shell variables the document's ``sh`` blocks assign (``NAME=value`` words at the start of a line),
    in order (a start-up script's own variables, in a plain block, are the VM's, not the reader's)."""
    values: dict[str, str] = {}
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        for line in block.splitlines():
            if not re.match(r"[A-Z_]+=", line):
                continue
            for word in shlex.split(re.sub(r"\$\([^()]*(\([^()]*\)[^()]*)*\)", SAMPLE, line)):
                name, sep, value = word.partition("=")
                if not sep or not re.fullmatch(r"[A-Z_]+", name):
                    break
                values[name] = expand(value, values)
    return values


def expand(line: str, values: dict[str, str]) -> str:
    """``line`` with ``$(…)`` as a sample value and ``$NAME`` / ``${NAME…}`` as the document's values."""
    line = re.sub(r"\$\([^()]*(\([^()]*\)[^()]*)*\)", SAMPLE, line)
    line = re.sub(r"\$\{([A-Z_]+)%%[^}]*\}", lambda m: values.get(m.group(1), "x").split("/")[0], line)
    return re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: values.get(m.group(1), "x"), line)


def parse(lines: list[str], tmp_path: Path) -> tuple[list[dict[str, object]], bool, str]:
    """gcloud's verdict on each line, whether the parser could reach a network, and its stderr."""
    sdk = _sdk()
    if sdk is None:
        pytest.skip(
            "gcloud is not installed (or `gcloud info` failed): the documented commands cannot be parsed"
        )
    python, lib = sdk
    argv = [shlex.split(line)[1:] for line in lines]
    command = [python, str(PARSER)]
    if (
        shutil.which("unshare")
        and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0
    ):
        command = ["unshare", "-rn", *command]  # no network interface at all, not even loopback
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{lib}:{lib / 'third_party'}",
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-config"),  # no account, no project, no credentials
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        command, input=json.dumps(argv), capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["results"], report["network"], done.stderr


@pytest.fixture(scope="module")
def documented() -> list[str]:
    text = DOC.read_text()
    variables = doc_variables(text)
    return [expand(line, variables) for line in doc_lines(text)]


def test_every_documented_gcloud_line_parses_and_no_bq_line_is_left_unchecked(
    documented: list[str], tmp_path: Path
) -> None:
    assert len(documented) >= 30  # the whole recipe was found, not a fragment of it
    assert not [line for line in documented if line.startswith("bq ")], (
        "bq cannot be checked without an account"
    )
    results, network, stderr = parse(documented, tmp_path)
    rejected = [line for line, result in zip(documented, results, strict=True) if not result["ok"]]
    assert rejected == [], "gcloud rejects:\n" + "\n".join(rejected) + f"\n{stderr[-3000:]}"
    assert not network or not shutil.which("unshare")


def test_the_check_fails_an_unknown_flag_and_passes_its_corrected_line(tmp_path: Path) -> None:
    """The checker itself: the index line docs/cloud.md had (a flag gcloud does not have) fails, the line that
    replaced it passes, and the parser runs with no network."""
    wrong = (
        "gcloud firestore indexes fields update state --collection-group=r --enable-collection-group-scope"
    )
    right = (
        "gcloud firestore indexes composite create --collection-group=r --query-scope=collection-group "
        "--field-config=field-path=state,order=ascending --field-config=field-path=lease_expires_at,order=ascending"
    )
    unknown_command = "gcloud run worker-pools deploy w --image=i --region=r"  # beta only in SDK 528
    results, network, stderr = parse([wrong, right, unknown_command], tmp_path)
    assert [r["ok"] for r in results] == [False, True, False], stderr
    assert "unrecognized arguments: --enable-collection-group-scope" in stderr
    if shutil.which("unshare"):
        assert network is False
