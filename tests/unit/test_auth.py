"""Role tokens (``runtime.auth``) and the broker's grants (``paceline.ops.broker.GRANTS``)."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest

from models import topics
from paceline.ops import broker
from runtime import auth


def test_tokens_carry_their_role_and_are_checked_against_the_key(tmp_path: Path) -> None:
    files = auth.write_tokens(tmp_path)
    secret = (tmp_path / auth.SECRET_FILE).read_bytes()
    assert len(secret) == 32 and stat.S_IMODE((tmp_path / auth.SECRET_FILE).stat().st_mode) == 0o600
    for role, path in files.items():
        assert auth.role_of(path.read_text(), secret) == role
    with pytest.raises(jwt.InvalidSignatureError):
        auth.role_of(files["worker"].read_text(), b"x" * 32)
    with pytest.raises(ValueError, match="unknown role"):
        auth.mint(secret, "root")
    again = auth.write_tokens(tmp_path)  # a restart keeps the key and the tokens
    assert {r: p.read_text() for r, p in again.items()} == {r: p.read_text() for r, p in files.items()}


def test_the_process_token_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PACELINE_PULSAR_TOKEN", raising=False)
    monkeypatch.delenv("PACELINE_PULSAR_TOKEN_FILE", raising=False)
    assert auth.token_from_env() is None and auth.admin_headers() == {}
    (tmp_path / "t").write_text("abc\n")
    monkeypatch.setenv("PACELINE_PULSAR_TOKEN_FILE", str(tmp_path / "t"))
    assert auth.token_from_env() == "abc"
    monkeypatch.setenv("PACELINE_PULSAR_TOKEN", "direct")
    assert auth.admin_headers() == {"Authorization": "Bearer direct"}


def test_grants_name_known_roles_and_topics_and_keep_the_saga_log_to_the_health_checker() -> None:
    assert set(broker.GRANTS) | {auth.SUPERUSER} == set(auth.ROLES)
    writers = {role for role, grants in broker.GRANTS.items()
               for target, actions in grants if "produce" in actions}  # fmt: skip
    assert "viewer" not in writers
    for role, grants in broker.GRANTS.items():
        for target, _ in grants:
            assert target in topics.NAMESPACES or target.removeprefix("non-").startswith(
                f"persistent://{topics.TENANT}/"
            )
        produced = {t for t, a in grants if "produce" in a}
        if role != "health-checker":
            assert topics.SAGA_LOG not in produced and topics.ASSIGNMENTS not in produced
        if role != "endpoint":
            assert topics.EXECUTIONS not in produced
        if role not in ("worker", "endpoint"):
            assert "jobs" not in produced
        if role != "operator":
            assert topics.RISK not in produced
        if role != "endpoint":  # new orders come from the desk alone, on the record and its twin
            assert topics.JOB_REQUESTS not in produced and topics.LIVE_JOB_REQUESTS not in produced
        if role != "health-checker":  # a New told early comes from the leader alone
            assert topics.REPORTS not in produced and topics.LIVE_REPORTS not in produced


def test_an_auth_run_folder_configures_the_token_provider(tmp_path: Path) -> None:
    cfg = broker.BrokerConfig(run_dir=tmp_path, cache_dir=tmp_path / "cache", auth=True)
    managed = broker.render_conf(cfg)
    assert managed["authenticationEnabled"] == "true" and managed["authorizationEnabled"] == "true"
    assert managed["superUserRoles"] == auth.SUPERUSER
    assert managed["tokenSecretKey"] == f"file://{tmp_path / 'auth' / auth.SECRET_FILE}"
    assert (
        cfg.admin_token
        and auth.role_of(cfg.admin_token, (tmp_path / "auth" / auth.SECRET_FILE).read_bytes()) == "admin"
    )
    plain = broker.BrokerConfig(run_dir=tmp_path / "plain", cache_dir=tmp_path / "cache")
    (tmp_path / "plain").mkdir()
    assert "authenticationEnabled" not in broker.render_conf(plain) and plain.admin_token is None
