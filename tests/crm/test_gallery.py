"""The property photo gallery: optimisation, refusals that leave nothing behind, order, cover,
deletion, and who may see and change what."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageCms
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import NoMatchFound

from doorstep.app import create_app
from doorstep.config import Settings
from doorstep.crm import gallery, rules
from doorstep.crm.gallery_api import media_router
from doorstep.crm.models import Property, PropertyImage
from doorstep.crm.storage import LocalStorage
from doorstep.platform.audit import AuditEntry
from doorstep.platform.auth import Principal, Role, User
from tests.conftest import Brokerage, Factory, bearer, principal_of, web_login

MB = 1024 * 1024
UPLOAD_LIMIT = 24 * MB  # the request-body allowance of the upload route in these tests


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session], media: Path) -> FastAPI:
    custom = settings.model_copy(update={"media_dir": str(media), "max_upload_bytes": UPLOAD_LIMIT})
    built = create_app(custom, sessionmaker=session_factory)
    try:
        built.url_path_for("property_media", image_id=1, size="full")
    except NoMatchFound:  # until the pages router mounts it
        built.include_router(media_router)
    return built


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def make_property(db: Session, agent: User, title: str = "12 Oak Street") -> Property:
    prop = Property(
        tenant_id=agent.tenant_id,
        listing_agent_id=agent.id,
        property_type="residential",
        title=title,
        address=title,
        city="Austin",
        state="TX",
        zip_code="78701",
        price=Decimal("450000.00"),
        attributes={"bedrooms": 3},
    )
    db.add(prop)
    db.commit()
    return prop


@pytest.fixture
def listing(db: Session, brokerage: Brokerage) -> Property:
    return make_property(db, brokerage.agent)


# --- image builders --------------------------------------------------------------------------


def jpeg(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=90)
    return out.getvalue()


def png(size: tuple[int, int] = (64, 48), mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 120, 200, 0) if mode == "RGBA" else 128).save(out, "PNG")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A few dozen bytes whose header claims `width` x `height` pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def upload(
    client: TestClient, prop_id: int, headers: dict[str, str], *files: tuple[str, bytes]
) -> Any:
    parts = [("files", (name, data, "image/jpeg")) for name, data in files]
    return client.post(f"/api/properties/{prop_id}/images", files=parts, headers=headers)


def stored_files(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


def image_count(db: Session, prop: Property) -> int:
    stmt = (
        select(func.count()).select_from(PropertyImage).where(PropertyImage.property_id == prop.id)
    )
    return db.scalar(stmt) or 0


def open_image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# --- optimisation ----------------------------------------------------------------------------


def test_exif_orientation_is_applied() -> None:
    # Stored 60 wide x 40 tall, red above blue; Orientation 6 says "rotate 90 degrees clockwise
    # to display", so upright it is 40 x 60 with blue on the left and red on the right.
    img = Image.new("RGB", (60, 40), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95, exif=exif)

    result = gallery.process_image(out.getvalue())

    upright = open_image(result.full)
    assert (result.width, result.height) == upright.size == (40, 60)
    left, right = upright.getpixel((5, 30)), upright.getpixel((35, 30))
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert (left[0] < 60, left[2] > 200) == (True, True), left  # blue
    assert (right[0] > 200, right[2] < 60) == (True, True), right  # red
    assert 0x0112 not in upright.getexif()


def test_metadata_is_stripped() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0132] = "2024:01:02 03:04:05"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (30.0, 16.0, 2.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (90, 150, 60)).save(
        out, "JPEG", exif=exif, icc_profile=icc, comment=b"home of the Smith family"
    )
    source = open_image(out.getvalue())
    assert source.getexif()
    assert "icc_profile" in source.info
    assert "comment" in source.info

    result = gallery.process_image(out.getvalue())

    for data in (result.full, result.thumb):
        clean = open_image(data)
        assert clean.format == "JPEG"
        assert not clean.getexif()
        assert not {"exif", "icc_profile", "comment", "xmp"} & set(clean.info)
        assert b"SecretCam" not in data
        assert b"Smith" not in data
        assert b"Exif" not in data


def test_large_image_is_scaled_to_2048_and_gets_a_thumbnail() -> None:
    result = gallery.process_image(jpeg((4000, 3000)))

    full, thumb = open_image(result.full), open_image(result.thumb)
    assert full.size == (result.width, result.height) == (2048, 1536)
    assert thumb.size == (400, 300)
    assert full.info.get("progressive") or full.info.get("progression")


def test_small_image_is_not_upscaled_and_portrait_keeps_its_shape() -> None:
    small = gallery.process_image(jpeg((300, 200)))
    assert (small.width, small.height) == (300, 200)
    assert open_image(small.thumb).size == (300, 200)

    tall = gallery.process_image(jpeg((1000, 3000)))
    assert (tall.width, tall.height) == (683, 2048)
    assert open_image(tall.thumb).size == (133, 400)


def test_transparent_png_becomes_a_jpeg_on_white() -> None:
    result = gallery.process_image(png((50, 50), "RGBA"))
    img = open_image(result.full)
    assert img.format == "JPEG"
    assert img.mode == "RGB"
    pixel = img.getpixel((25, 25))
    assert isinstance(pixel, tuple)
    assert min(pixel) > 245  # fully transparent pixels end up white


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"just some text, not a photo\n" * 10, 415),
        (b"", 415),
        (jpeg()[:200], 415),  # a valid header in front of missing data
        (b"GIF89a" + b"\x00" * 40, 415),
        (png_declaring(100_000, 100_000), 413),  # Pillow's own bomb check trips on open
        (png_declaring(10_000, 6_000), 413),  # 60 megapixels: over our limit of 50
    ],
)
def test_refusals_of_process_image(data: bytes, status: int) -> None:
    with pytest.raises(gallery.ImageRefused) as refused:
        gallery.process_image(data)
    assert refused.value.status == status


def test_can_edit_property_rule() -> None:
    def who(role: Role, user_id: int) -> Principal:
        return Principal(user_id=user_id, tenant_id=1, role=role, email="x@y.z", full_name="X")

    listing_agent, broker = 10, 20
    assert rules.can_edit_property(who(Role.admin, 1), listing_agent, broker)
    assert rules.can_edit_property(who(Role.agent, listing_agent), listing_agent, broker)
    assert rules.can_edit_property(who(Role.broker, broker), listing_agent, broker)
    assert rules.can_edit_property(who(Role.broker, listing_agent), listing_agent, None)
    assert not rules.can_edit_property(who(Role.agent, 11), listing_agent, broker)
    assert not rules.can_edit_property(who(Role.broker, 21), listing_agent, broker)
    assert not rules.can_edit_property(who(Role.agent, broker), listing_agent, broker)
    assert not rules.can_edit_property(who(Role.client, listing_agent), listing_agent, broker)
    assert not rules.can_edit_property(who(Role.analyst, 1), listing_agent, broker)


# --- upload through the API ------------------------------------------------------------------


def test_upload_lists_in_order_with_the_first_as_cover(
    client: TestClient, brokerage: Brokerage, listing: Property, media: Path, db: Session
) -> None:
    auth = bearer(client, brokerage.agent)
    response = upload(
        client, listing.id, auth, ("front.jpg", jpeg((4000, 3000))), ("garden.png", png())
    )
    assert response.status_code == 201, response.text
    images = response.json()
    assert [i["original_name"] for i in images] == ["front.jpg", "garden.png"]
    assert [i["position"] for i in images] == [0, 1]
    assert [i["is_cover"] for i in images] == [True, False]
    assert (images[0]["width"], images[0]["height"]) == (2048, 1536)
    assert images[0]["url"].startswith(f"/media/properties/{images[0]['id']}/full")
    assert images[0]["thumbnail_url"].startswith(f"/media/properties/{images[0]['id']}/thumb")
    assert len(stored_files(media)) == 4
    assert all(p.suffix == ".jpg" for p in stored_files(media))

    more = upload(client, listing.id, auth, ("kitchen.jpg", jpeg()))
    assert more.status_code == 201
    assert [i["original_name"] for i in more.json()] == ["front.jpg", "garden.png", "kitchen.jpg"]
    assert more.json()[0]["is_cover"]

    listed = client.get(f"/api/properties/{listing.id}/images", headers=auth)
    assert listed.json() == more.json()
    db.expire_all()
    assert db.get(Property, listing.id).cover_image_id == images[0]["id"]  # type: ignore[union-attr]


def _assert_nothing_left(db: Session, prop: Property, media: Path) -> None:
    assert image_count(db, prop) == 0
    assert stored_files(media) == []
    db.expire_all()
    assert db.get(Property, prop.id).cover_image_id is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("files", "status", "phrase"),
    [
        (
            [("listing.jpg", b"this is a text file, not a photo")],
            415,
            "listing.jpg is not an image",
        ),
        ([("bomb.png", png_declaring(100_000, 100_000))], 413, "megapixels"),
        ([("wide.png", png_declaring(10_000, 6_000))], 413, "10000 x 6000"),
        ([("huge.jpg", b"\xff" * (20 * MB + 1))], 413, "larger than 20 MB"),
        (
            [("a.jpg", jpeg()), ("b.jpg", jpeg()), ("c.jpg", b"GIF89a broken")],
            415,
            "1 of 3 files were refused: c.jpg is not an image",
        ),
    ],
)
def test_refused_uploads_leave_nothing_behind(
    client: TestClient,
    brokerage: Brokerage,
    listing: Property,
    media: Path,
    db: Session,
    files: list[tuple[str, bytes]],
    status: int,
    phrase: str,
) -> None:
    response = upload(client, listing.id, bearer(client, brokerage.agent), *files)
    assert response.status_code == status, response.text
    assert phrase in response.json()["detail"]
    assert "Nothing was uploaded" in response.json()["detail"]
    _assert_nothing_left(db, listing, media)


def test_too_many_files_in_one_request(
    client: TestClient, brokerage: Brokerage, listing: Property, media: Path, db: Session
) -> None:
    small = jpeg((8, 8))
    response = upload(
        client,
        listing.id,
        bearer(client, brokerage.agent),
        *[(f"{n}.jpg", small) for n in range(21)],
    )
    assert response.status_code == 422
    assert "At most 20 files" in response.json()["detail"]
    _assert_nothing_left(db, listing, media)


def test_too_many_images_for_one_property(
    client: TestClient, brokerage: Brokerage, listing: Property, media: Path, db: Session
) -> None:
    for n in range(gallery.MAX_IMAGES_PER_PROPERTY - 1):
        db.add(
            PropertyImage(
                tenant_id=listing.tenant_id,
                property_id=listing.id,
                position=n,
                storage_key=f"x/{n}.jpg",
                thumbnail_key=f"x/{n}-thumb.jpg",
                width=10,
                height=10,
                size_bytes=100,
            )
        )
    db.commit()
    auth = bearer(client, brokerage.agent)
    refused = upload(client, listing.id, auth, ("a.jpg", jpeg()), ("b.jpg", jpeg()))
    assert refused.status_code == 422
    assert "at most 50 images" in refused.json()["detail"]
    assert "1 more can be added" in refused.json()["detail"]
    assert image_count(db, listing) == 49
    assert stored_files(media) == []
    assert upload(client, listing.id, auth, ("a.jpg", jpeg())).status_code == 201


def test_a_body_over_the_upload_limit_is_refused_and_other_routes_keep_theirs(
    client: TestClient, brokerage: Brokerage, listing: Property, media: Path, db: Session
) -> None:
    auth = bearer(client, brokerage.agent)
    big = b"\xff" * (13 * MB)
    over = upload(client, listing.id, auth, ("a.jpg", big), ("b.jpg", big))
    assert over.status_code == 413
    assert over.json()["code"] == "payload_too_large"
    _assert_nothing_left(db, listing, media)
    # An 11 MB body passes the upload route's limit (the file itself is then checked) ...
    single = upload(client, listing.id, auth, ("a.jpg", b"\xff" * (11 * MB)))
    assert single.status_code == 415
    # ... but the general 10 MB limit still holds everywhere else, even under the same path.
    order = client.put(
        f"/api/properties/{listing.id}/images/order",
        content=b"[" + b"1," * (6 * MB) + b"1]",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert order.status_code == 413


def test_a_storage_failure_half_way_deletes_what_was_written(
    client: TestClient,
    brokerage: Brokerage,
    listing: Property,
    media: Path,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_save = LocalStorage.save
    calls = {"n": 0}

    def flaky_save(self: LocalStorage, key: str, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 5:  # the third image's full-size file
            raise OSError("disk full")
        real_save(self, key, data)

    monkeypatch.setattr(LocalStorage, "save", flaky_save)
    response = upload(
        client,
        listing.id,
        bearer(client, brokerage.agent),
        *[(f"{n}.jpg", jpeg()) for n in range(3)],
    )
    assert response.status_code == 500
    assert calls["n"] == 5
    _assert_nothing_left(db, listing, media)


def test_a_rolled_back_upload_deletes_its_files(
    db: Session, brokerage: Brokerage, listing: Property, media: Path
) -> None:
    storage = LocalStorage(media)
    result = gallery.upload_images(
        db,
        storage,
        principal=principal_of(brokerage.agent),
        property_id=listing.id,
        uploads=[gallery.Upload("a.jpg", io.BytesIO(jpeg()))],
    )
    assert len(result.images) == 1
    assert len(stored_files(media)) == 2
    db.rollback()
    assert stored_files(media) == []
    assert image_count(db, listing) == 0


def test_upload_route_takes_multipart_only(
    client: TestClient, brokerage: Brokerage, listing: Property
) -> None:
    auth = bearer(client, brokerage.agent)
    as_json = client.post(
        f"/api/properties/{listing.id}/images", json={"files": ["a.jpg"]}, headers=auth
    )
    assert as_json.status_code == 415
    empty = client.post(f"/api/properties/{listing.id}/images", data={"x": "1"}, headers=auth)
    assert empty.status_code == 422


def test_browser_uploads_need_the_csrf_token(
    client: TestClient, brokerage: Brokerage, listing: Property, media: Path
) -> None:
    token = web_login(client, brokerage.agent)
    url = f"/api/properties/{listing.id}/images"
    files = [("files", ("a.jpg", jpeg(), "image/jpeg"))]
    refused = client.post(url, files=files)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert stored_files(media) == []
    by_header = client.post(url, files=files, headers={"X-CSRF-Token": token})
    assert by_header.status_code == 201, by_header.text
    by_field = client.post(url, files=files, data={"csrf_token": token})
    assert by_field.status_code == 201, by_field.text
    assert len(by_field.json()) == 2


# --- order, cover, delete --------------------------------------------------------------------


@pytest.fixture
def three(client: TestClient, brokerage: Brokerage, listing: Property) -> list[int]:
    names = ("one.jpg", "two.jpg", "three.jpg")
    response = upload(
        client, listing.id, bearer(client, brokerage.agent), *[(n, jpeg()) for n in names]
    )
    assert response.status_code == 201, response.text
    return [i["id"] for i in response.json()]


def test_reorder(
    client: TestClient, brokerage: Brokerage, listing: Property, three: list[int]
) -> None:
    auth = bearer(client, brokerage.agent)
    url = f"/api/properties/{listing.id}/images/order"
    a, b, c = three
    ok = client.put(url, json={"image_ids": [c, a, b]}, headers=auth)
    assert ok.status_code == 200, ok.text
    assert [i["id"] for i in ok.json()] == [c, a, b]
    assert [i["position"] for i in ok.json()] == [0, 1, 2]
    # The cover stays the chosen image, wherever it moves.
    assert [i["is_cover"] for i in ok.json()] == [False, True, False]
    listed = client.get(f"/api/properties/{listing.id}/images", headers=auth).json()
    assert [i["id"] for i in listed] == [c, a, b]


@pytest.mark.parametrize(
    ("order", "phrase"),
    [
        (lambda a, b, c: [a, b], "missing from the order: "),
        (lambda a, b, c: [a, b, c, c], "listed more than once: "),
        (lambda a, b, c: [a, b, c, 999_999], "not images of this property: 999999"),
        (lambda a, b, c: [a, a, b], "listed more than once"),
        (lambda a, b, c: [], "missing from the order"),
    ],
)
def test_reorder_validation(
    client: TestClient,
    brokerage: Brokerage,
    listing: Property,
    three: list[int],
    order: Any,
    phrase: str,
) -> None:
    auth = bearer(client, brokerage.agent)
    response = client.put(
        f"/api/properties/{listing.id}/images/order",
        json={"image_ids": order(*three)},
        headers=auth,
    )
    assert response.status_code == 422
    assert phrase in response.json()["detail"]
    listed = client.get(f"/api/properties/{listing.id}/images", headers=auth).json()
    assert [i["id"] for i in listed] == three


def test_reorder_refuses_another_propertys_image(
    client: TestClient, brokerage: Brokerage, listing: Property, three: list[int], db: Session
) -> None:
    other = make_property(db, brokerage.agent, "9 Elm Street")
    auth = bearer(client, brokerage.agent)
    foreign = upload(client, other.id, auth, ("x.jpg", jpeg())).json()[0]["id"]
    response = client.put(
        f"/api/properties/{listing.id}/images/order",
        json={"image_ids": [*three[:2], foreign]},
        headers=auth,
    )
    assert response.status_code == 422
    assert f"not images of this property: {foreign}" in response.json()["detail"]


def test_choose_the_cover(
    client: TestClient, brokerage: Brokerage, listing: Property, three: list[int], db: Session
) -> None:
    auth = bearer(client, brokerage.agent)
    url = f"/api/properties/{listing.id}/cover"
    response = client.put(url, json={"image_id": three[2]}, headers=auth)
    assert response.status_code == 200, response.text
    assert [i["is_cover"] for i in response.json()] == [False, False, True]
    db.expire_all()
    assert db.get(Property, listing.id).cover_image_id == three[2]  # type: ignore[union-attr]
    # The change is in the audit log, like every edit of a property.
    entries = db.scalars(
        select(AuditEntry).where(
            AuditEntry.entity == "properties", AuditEntry.entity_id == str(listing.id)
        )
    ).all()
    assert any((e.after or {}).get("cover_image_id") == three[2] for e in entries)

    unknown = client.put(url, json={"image_id": 999_999}, headers=auth)
    assert unknown.status_code == 422
    assert "not an image of this property" in unknown.json()["detail"]


def test_delete_moves_the_cover_and_removes_the_files(
    client: TestClient, brokerage: Brokerage, listing: Property, three: list[int], media: Path
) -> None:
    auth = bearer(client, brokerage.agent)
    assert len(stored_files(media)) == 6
    a, b, c = three
    response = client.delete(f"/api/properties/{listing.id}/images/{a}", headers=auth)
    assert response.status_code == 200, response.text
    assert [(i["id"], i["position"], i["is_cover"]) for i in response.json()] == [
        (b, 0, True),
        (c, 1, False),
    ]
    assert len(stored_files(media)) == 4
    # The last image, when it is the cover, hands the cover to the one before it.
    client.put(f"/api/properties/{listing.id}/cover", json={"image_id": c}, headers=auth)
    after = client.delete(f"/api/properties/{listing.id}/images/{c}", headers=auth).json()
    assert [(i["id"], i["is_cover"]) for i in after] == [(b, True)]
    last = client.delete(f"/api/properties/{listing.id}/images/{b}", headers=auth)
    assert last.json() == []
    assert stored_files(media) == []
    gone = client.delete(f"/api/properties/{listing.id}/images/{b}", headers=auth)
    assert gone.status_code == 404


# --- who sees and changes what ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "agent", "broker"])
def test_listing_agent_their_broker_and_admins_may_change(
    client: TestClient, brokerage: Brokerage, listing: Property, role: str
) -> None:
    auth = bearer(client, brokerage.by_role(Role(role)))
    created = upload(client, listing.id, auth, ("a.jpg", jpeg()))
    assert created.status_code == 201, created.text
    image_id = created.json()[0]["id"]
    url = f"/api/properties/{listing.id}"
    assert client.put(f"{url}/cover", json={"image_id": image_id}, headers=auth).status_code == 200
    order = client.put(f"{url}/images/order", json={"image_ids": [image_id]}, headers=auth)
    assert order.status_code == 200
    assert client.delete(f"{url}/images/{image_id}", headers=auth).status_code == 200


def test_other_staff_may_look_but_not_change(
    client: TestClient,
    brokerage: Brokerage,
    listing: Property,
    three: list[int],
    factory: Factory,
    db: Session,
    media: Path,
) -> None:
    other_broker = factory.user(brokerage.tenant, Role.broker)
    db.commit()
    url = f"/api/properties/{listing.id}"
    for user in (brokerage.other_agent, other_broker):
        auth = bearer(client, user)
        listed = client.get(f"{url}/images", headers=auth)
        assert listed.status_code == 200
        assert [i["id"] for i in listed.json()] == three
        image = client.get(listed.json()[0]["thumbnail_url"], headers=auth)
        assert image.status_code == 200
        refused = [
            upload(client, listing.id, auth, ("a.jpg", jpeg())),
            client.put(f"{url}/cover", json={"image_id": three[1]}, headers=auth),
            client.put(f"{url}/images/order", json={"image_ids": three[::-1]}, headers=auth),
            client.delete(f"{url}/images/{three[0]}", headers=auth),
        ]
        for response in refused:
            assert response.status_code == 403, response.text
            assert "listing agent, their broker or an admin" in response.json()["detail"]
    assert image_count(db, listing) == 3
    assert len(stored_files(media)) == 6


@pytest.mark.parametrize("who", ["client", "analyst", "rival_admin", "rival_agent"])
def test_non_staff_and_other_tenants_see_nothing(
    client: TestClient,
    brokerage: Brokerage,
    rival: Brokerage,
    listing: Property,
    three: list[int],
    who: str,
) -> None:
    user = {
        "client": brokerage.client,
        "analyst": brokerage.analyst,
        "rival_admin": rival.admin,
        "rival_agent": rival.agent,
    }[who]
    auth = bearer(client, user)
    url = f"/api/properties/{listing.id}"
    assert client.get(f"{url}/images", headers=auth).status_code == 404
    assert upload(client, listing.id, auth, ("a.jpg", jpeg())).status_code == 404
    assert client.put(f"{url}/cover", json={"image_id": three[0]}, headers=auth).status_code == 404
    assert client.delete(f"{url}/images/{three[0]}", headers=auth).status_code == 404
    for size in ("full", "thumb"):
        assert client.get(f"/media/properties/{three[0]}/{size}", headers=auth).status_code == 404


def test_media_route(
    client: TestClient, brokerage: Brokerage, listing: Property, three: list[int]
) -> None:
    auth = bearer(client, brokerage.agent)
    images = client.get(f"/api/properties/{listing.id}/images", headers=auth).json()
    full = client.get(images[0]["url"], headers=auth)
    assert full.status_code == 200
    assert full.headers["content-type"] == "image/jpeg"
    assert "immutable" in full.headers["cache-control"]
    assert "private" in full.headers["cache-control"]
    assert open_image(full.content).format == "JPEG"
    thumb = client.get(f"/media/properties/{three[0]}/thumb", headers=auth)
    assert thumb.status_code == 200
    assert max(open_image(thumb.content).size) <= 400
    assert client.get(f"/media/properties/{three[0]}/huge", headers=auth).status_code == 422
    assert client.get("/media/properties/999999/full", headers=auth).status_code == 404
    # Anonymous visitors get nothing; a browser session's cookie is enough (an <img> tag).
    assert client.get(f"/media/properties/{three[0]}/full").status_code == 401
    web_login(client, brokerage.other_agent)
    assert client.get(f"/media/properties/{three[0]}/full").status_code == 200


# --- the page partial ------------------------------------------------------------------------


def test_gallery_partial_renders_the_saved_order_and_the_controls(
    client: TestClient, brokerage: Brokerage, listing: Property, three: list[int], db: Session
) -> None:
    from doorstep.web.templating import build_templates

    env = build_templates().env
    auth = bearer(client, brokerage.agent)
    order = client.put(
        f"/api/properties/{listing.id}/images/order", json={"image_ids": three[::-1]}, headers=auth
    )
    images = order.json()
    db.expire_all()
    prop = db.get(Property, listing.id)

    html = env.get_template("crm/_gallery.html").render(property=prop, images=images, can_edit=True)
    for testid in ("gallery", "gallery-dropzone", "gallery-input", "gallery-error"):
        assert f'data-testid="{testid}"' in html
    rendered = re.findall(r'data-testid="gallery-thumb" data-image-id="(\d+)"', html)
    assert [int(i) for i in rendered] == three[::-1]
    assert f'data-property-id="{listing.id}"' in html
    assert images[0]["thumbnail_url"].replace("&", "&amp;") in html
    assert "/static/js/gallery.js" in html

    read_only = env.get_template("crm/_gallery.html").render(
        property=prop, images=images, can_edit=False
    )
    assert 'data-testid="gallery-dropzone"' not in read_only
    assert 'data-testid="gallery-make-cover"' not in read_only
    assert len(re.findall(r'data-testid="gallery-thumb" data-image-id="\d+"', read_only)) == 3

    imported = env.from_string(
        '{% from "crm/_gallery.html" import gallery %}{{ gallery(p, imgs, false) }}'
    ).render(p=prop, imgs=[])
    assert 'data-testid="gallery-empty"' in imported
    assert 'data-testid="gallery-dropzone"' not in imported
