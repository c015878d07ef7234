"""access.readable(): the one place that scopes queries; tested directly."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.access import get_readable, readable
from doorstep.platform.auth import RefreshToken, Role, User
from doorstep.platform.errors import NotFound
from tests.conftest import Brokerage, principal_of


def test_readable_scopes_to_tenant_and_policy(
    db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    as_admin = principal_of(brokerage.admin)
    ids = set(db.scalars(readable(select(User.id), as_admin, User)))
    assert rival.admin.id not in ids
    assert brokerage.client.id in ids
    as_client = principal_of(brokerage.client)
    assert set(db.scalars(readable(select(User), as_client))) == {brokerage.client, brokerage.agent}


def test_get_readable_hides_existence(db: Session, brokerage: Brokerage, rival: Brokerage) -> None:
    with pytest.raises(NotFound):
        get_readable(db, User, rival.admin.id, principal_of(brokerage.admin))
    assert (
        get_readable(db, User, brokerage.agent.id, principal_of(brokerage.client))
        == brokerage.agent
    )


def test_readable_refuses_unscoped_models(brokerage: Brokerage) -> None:
    with pytest.raises(TypeError):
        readable(select(RefreshToken.id), principal_of(brokerage.admin))


def test_principal_roles(brokerage: Brokerage) -> None:
    principal = principal_of(brokerage.agent)
    assert principal.has_role(Role.agent, Role.broker)
    assert not principal.has_role(Role.admin)
    assert principal.broker_id == brokerage.broker.id
