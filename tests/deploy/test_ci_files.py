"""cloudbuild.yaml, the GitHub workflow and docker-compose.yml are valid against their published schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO

CHECK = Path(sys.executable).with_name("check-jsonschema")
FILES = {
    "vendor.cloudbuild": REPO / "cloudbuild.yaml",
    "vendor.github-workflows": REPO / ".github" / "workflows" / "ci.yml",
    "vendor.compose-spec": REPO / "docker-compose.yml",
}


def _check(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK), "--builtin-schema", schema, str(path)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("schema", sorted(FILES))
def test_valid_against_its_published_schema(schema: str) -> None:
    result = _check(schema, FILES[schema])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "cloudbuild.yaml"
    shutil.copy(FILES["vendor.cloudbuild"], broken)
    broken.write_text(broken.read_text().replace("    args:", "    argz:", 1))
    assert _check("vendor.cloudbuild", broken).returncode != 0


def test_cloud_build_migrates_before_it_deploys_and_rolls_out_with_the_tool() -> None:
    build = yaml.safe_load(FILES["vendor.cloudbuild"].read_text())
    steps = {s["id"]: s for s in build["steps"]}
    assert "supabase@" in " ".join(steps["migrate"]["args"]) and "db push" in " ".join(steps["migrate"]["args"])
    assert steps["migrate"]["secretEnv"] == ["DATABASE_URL"]
    assert steps["deploy"]["waitFor"] == ["migrate"]
    assert "python -m deploy apply --env ${_ENV}" in " ".join(steps["deploy"]["args"])
    assert {s["args"][2] for s in build["steps"] if s["id"].endswith("-image")} == {
        "deploy/functions.Dockerfile", "deploy/console.Dockerfile"}


def test_the_workflow_tests_every_push_and_deploys_tags_after_the_tests() -> None:
    workflow = yaml.safe_load(FILES["vendor.github-workflows"].read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers and set(triggers["push"]["tags"]) == {"dev-*", "staging-*", "prod-*"}
    assert any(".ci/run" in step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test" and "refs/tags/" in deploy["if"]
    assert any("cloudbuild.yaml" in step.get("run", "") for step in deploy["steps"])
