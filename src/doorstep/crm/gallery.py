"""A property's photo gallery: upload (with server-side optimisation), order, cover, delete.

Every upload is re-encoded, never stored as sent:

- the file is decoded by Pillow (the extension and the declared content type are ignored), in
  one of `ACCEPTED_FORMATS` only, and refused before decoding when it declares more than
  `MAX_PIXELS` (a decompression bomb: a small file that inflates to gigabytes);
- the EXIF orientation is applied, an embedded colour profile is converted to sRGB, and then
  every piece of metadata (EXIF with GPS, ICC, XMP, comments) is dropped;
- the longest side is brought down to `MAX_SIDE` (never up), and the result saved as a
  progressive JPEG of quality 85, with a `THUMB_SIDE` thumbnail beside it. Transparent PNG,
  WebP and GIF images are flattened onto white: listing photos have no use for an alpha
  channel, and one output format keeps every browser, e-mail client and portal feed happy.

An upload is all or nothing: every file of the request is checked and processed before the
first one is stored, a failure while storing deletes what was written, and a rollback of the
request's transaction (commit failure included) deletes the files it had written. Deleted
images lose their files only once the deletion is committed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image, ImageCms, ImageOps
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from doorstep.crm import rules
from doorstep.crm.models import Property, PropertyImage
from doorstep.crm.storage import Storage
from doorstep.platform.access import get_readable
from doorstep.platform.auth import Principal, User
from doorstep.platform.errors import (
    DoorstepError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RuleViolation,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES_PER_REQUEST = 20
MAX_IMAGES_PER_PROPERTY = 50
MAX_PIXELS = 50_000_000  # width x height as declared by the file's header
MAX_SIDE = 2048
THUMB_SIDE = 400
JPEG_QUALITY = 85
THUMB_QUALITY = 80
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # JPEG covers MPO
CONTENT_TYPE = "image/jpeg"
WHITE = (255, 255, 255)

_WRITTEN_KEY = "doorstep.gallery.written"  # files to remove if the transaction rolls back
_DOOMED_KEY = "doorstep.gallery.doomed"  # files to remove once the transaction commits


# --- who may change a gallery --------------------------------------------------------------


# --- refusals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why one file was refused: the HTTP status it maps to and a sentence for the user."""

    name: str
    status: int
    code: str
    message: str


class ImageRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _not_an_image() -> ImageRefused:
    return ImageRefused(
        415,
        UnsupportedMediaType.code,
        "is not an image we can read (use JPEG, PNG, WebP, GIF, BMP or TIFF)",
    )


def _too_many_pixels(width: int, height: int) -> ImageRefused:
    return ImageRefused(
        413,
        "too_many_pixels",
        f"declares {width} x {height} pixels, more than the {MAX_PIXELS // 1_000_000} "
        "megapixels we accept",
    )


class UploadRefused(DoorstepError):
    """One or more files of an upload were refused; nothing of the request was kept."""

    def __init__(self, refusals: Sequence[Refusal], total: int) -> None:
        first = refusals[0]
        reasons = "; ".join(f"{r.name} {r.message}" for r in refusals)
        if total == 1:
            detail = f"{reasons}. Nothing was uploaded."
        else:
            detail = (
                f"{len(refusals)} of {total} files were refused: {reasons}. "
                "Nothing was uploaded; fix or remove them and try again."
            )
        super().__init__(detail)
        self.status_code = first.status
        self.code = first.code
        self.refusals = list(refusals)
        self.errors = [{"file": r.name, "code": r.code, "msg": r.message} for r in refusals]


# --- optimisation --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessedImage:
    full: bytes
    thumb: bytes
    width: int
    height: int


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    if not icc or img.mode != "RGB":
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            img, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img  # an unusable profile: keep the pixels as they are
    return converted if converted is not None else img


def _flatten(img: Image.Image) -> Image.Image:
    """RGB pixels only: transparency onto white, any other mode converted."""
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if img.mode != "RGB":
        return img.convert("RGB")
    return img


def _jpeg(img: Image.Image, *, quality: int, progressive: bool) -> bytes:
    img.info = {}  # nothing of the original's metadata may ride along (EXIF, ICC, comments)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, optimize=True, progressive=progressive)
    return out.getvalue()


def process_image(data: bytes) -> ProcessedImage:
    """Decode, check and re-encode one upload; raises ImageRefused with the reason."""
    if len(data) > MAX_FILE_BYTES:
        raise ImageRefused(
            413, PayloadTooLarge.code, f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
        )
    try:
        source = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(0, 0) from exc
    except Exception as exc:  # Pillow raises many types on hostile input; all mean "unreadable"
        raise _not_an_image() from exc
    with source:
        width, height = source.size
        if width * height > MAX_PIXELS:
            raise _too_many_pixels(width, height)
        if width < 1 or height < 1:
            raise _not_an_image()
        icc = source.info.get("icc_profile")
        try:
            if source.format in ("JPEG", "MPO") and max(width, height) > MAX_SIDE:
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale while staying above the target.
                scale = MAX_SIDE / max(width, height)
                source.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
            source.load()
            upright = ImageOps.exif_transpose(source)
            img = _to_srgb(_flatten(upright), icc if isinstance(icc, bytes) else None)
        except Image.DecompressionBombError as exc:
            raise _too_many_pixels(width, height) from exc
        except Exception as exc:  # truncated or corrupt data behind a valid header
            raise _not_an_image() from exc
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    thumb = img.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return ProcessedImage(
        full=_jpeg(img, quality=JPEG_QUALITY, progressive=True),
        thumb=_jpeg(thumb, quality=THUMB_QUALITY, progressive=False),
        width=img.width,
        height=img.height,
    )


# --- files written in a transaction --------------------------------------------------------


def _remove(storage: Storage, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # a leftover file is harmless; a failed request is not
            log.exception("could not delete media file %s", key)


@event.listens_for(Session, "after_rollback")
def _rollback_files(session: Session) -> None:
    written: list[tuple[Storage, str]] = session.info.pop(_WRITTEN_KEY, [])
    for storage, key in written:
        _remove(storage, [key])
    session.info.pop(_DOOMED_KEY, None)


@event.listens_for(Session, "after_commit")
def _commit_files(session: Session) -> None:
    session.info.pop(_WRITTEN_KEY, None)
    doomed: list[tuple[Storage, str]] = session.info.pop(_DOOMED_KEY, [])
    for storage, key in doomed:
        _remove(storage, [key])


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gallery:
    """A property and its images in gallery order."""

    prop: Property
    images: list[PropertyImage]

    @property
    def cover(self) -> PropertyImage | None:
        """The chosen cover, else the first image (a gallery with images always has one)."""
        for image in self.images:
            if image.id == self.prop.cover_image_id:
                return image
        return self.images[0] if self.images else None

    def json(self) -> list[dict[str, Any]]:
        """What the API returns and the page's script renders."""
        cover = self.cover
        return [
            {
                "id": image.id,
                "position": image.position,
                "url": image_url(image, "full"),
                "thumbnail_url": image_url(image, "thumb"),
                "width": image.width,
                "height": image.height,
                "size_bytes": image.size_bytes,
                "original_name": image.original_name,
                "is_cover": cover is not None and image.id == cover.id,
            }
            for image in self.images
        ]


def images_of(session: Session, prop: Property) -> list[PropertyImage]:
    stmt = (
        select(PropertyImage)
        .where(PropertyImage.property_id == prop.id, PropertyImage.tenant_id == prop.tenant_id)
        .order_by(PropertyImage.position, PropertyImage.id)
    )
    return list(session.scalars(stmt))


def list_images(session: Session, *, principal: Principal, property_id: int) -> Gallery:
    """A property's images in gallery order (404 for whoever may not read the property)."""
    prop = get_readable(session, Property, property_id, principal)
    return Gallery(prop, images_of(session, prop))


def media_file(
    session: Session, *, principal: Principal, image_id: int
) -> tuple[PropertyImage, Property]:
    """An image for the media route: the caller must be able to read the image and its
    property (404 otherwise, as for any unreadable row)."""
    image = get_readable(session, PropertyImage, image_id, principal)
    prop = get_readable(session, Property, image.property_id, principal)
    return image, prop


def version_of(image: PropertyImage) -> str:
    """A short fingerprint of the stored file, for cache-busting URLs."""
    return hashlib.sha256(image.storage_key.encode()).hexdigest()[:10]


# --- changing ------------------------------------------------------------------------------


def editable_property(session: Session, *, principal: Principal, property_id: int) -> Property:
    """The property, if the principal may change it: 404 when unreadable, 403 when read-only.

    The row is locked (PostgreSQL) so that concurrent uploads and reorders of one gallery
    queue up instead of racing for positions and the image limit."""
    prop = get_readable(session, Property, property_id, principal)
    broker_id = session.scalar(select(User.broker_id).where(User.id == prop.listing_agent_id))
    if not rules.can_edit_property(principal, prop.listing_agent_id, broker_id):
        raise Forbidden(
            "Only the listing agent, their broker or an admin can change this property's photos"
        )
    session.execute(select(Property.id).where(Property.id == prop.id).with_for_update())
    return prop


@dataclass(frozen=True)
class Upload:
    """One file of a request: its name as sent and a readable stream."""

    name: str
    file: IO[bytes]


def _read(upload: Upload) -> bytes:
    # One byte past the limit is enough to know the file is too large.
    return upload.file.read(MAX_FILE_BYTES + 1)


def _display_name(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return (name or "unnamed file")[:200]


def upload_images(
    session: Session,
    storage: Storage,
    *,
    principal: Principal,
    property_id: int,
    uploads: Sequence[Upload],
) -> Gallery:
    """Add the uploads to the end of the gallery, all or none; returns the whole gallery."""
    prop = editable_property(session, principal=principal, property_id=property_id)
    if not uploads:
        raise RuleViolation("Choose at least one image to upload")
    if len(uploads) > MAX_FILES_PER_REQUEST:
        raise RuleViolation(
            f"At most {MAX_FILES_PER_REQUEST} files can be uploaded at once "
            f"(you sent {len(uploads)}); nothing was uploaded"
        )
    existing = images_of(session, prop)
    room = MAX_IMAGES_PER_PROPERTY - len(existing)
    if len(uploads) > room:
        raise RuleViolation(
            f"A property keeps at most {MAX_IMAGES_PER_PROPERTY} images; this one has "
            f"{len(existing)}, so {max(room, 0)} more can be added (you sent {len(uploads)}). "
            "Nothing was uploaded."
        )
    processed: list[tuple[str, ProcessedImage]] = []
    refusals: list[Refusal] = []
    for upload in uploads:
        name = _display_name(upload.name)
        try:
            processed.append((name, process_image(_read(upload))))
        except ImageRefused as refused:
            refusals.append(Refusal(name, refused.status, refused.code, refused.message))
    if refusals:
        raise UploadRefused(refusals, total=len(uploads))
    return add_processed(session, storage, prop=prop, images=processed, uploaded_by=principal)


def add_processed(
    session: Session,
    storage: Storage,
    *,
    prop: Property,
    images: Sequence[tuple[str, ProcessedImage]],
    uploaded_by: Principal | None = None,
) -> Gallery:
    """Store already processed images at the end of the gallery (no permission check: the
    caller has done it; demo data uses this directly). Returns the whole gallery."""
    written: list[str] = []
    rollback_list: list[tuple[Storage, str]] = session.info.setdefault(_WRITTEN_KEY, [])
    rows: list[PropertyImage] = []
    last = session.scalar(
        select(func.max(PropertyImage.position)).where(PropertyImage.property_id == prop.id)
    )
    position = -1 if last is None else last
    try:
        for name, image in images:
            token = secrets.token_hex(12)
            base = f"t{prop.tenant_id}/p{prop.id}/{token}"
            for key, data in ((f"{base}.jpg", image.full), (f"{base}-thumb.jpg", image.thumb)):
                storage.save(key, data)
                written.append(key)
                rollback_list.append((storage, key))
            position += 1
            rows.append(
                PropertyImage(
                    tenant_id=prop.tenant_id,
                    property_id=prop.id,
                    position=position,
                    storage_key=f"{base}.jpg",
                    thumbnail_key=f"{base}-thumb.jpg",
                    original_name=name[:200],
                    content_type=CONTENT_TYPE,
                    width=image.width,
                    height=image.height,
                    size_bytes=len(image.full),
                    uploaded_by=uploaded_by.user_id if uploaded_by else None,
                )
            )
    except BaseException:
        _remove(storage, written)
        raise
    session.add_all(rows)
    session.flush()
    if prop.cover_image_id is None and rows:
        prop.cover_image_id = rows[0].id
        session.flush()
    return Gallery(prop, images_of(session, prop))


def _image_of(session: Session, prop: Property, image_id: int) -> PropertyImage:
    image = session.scalar(
        select(PropertyImage).where(
            PropertyImage.id == image_id,
            PropertyImage.property_id == prop.id,
            PropertyImage.tenant_id == prop.tenant_id,
        )
    )
    if image is None:
        raise NotFound(f"Image {image_id} of property {prop.id} not found")
    return image


def reorder(
    session: Session, *, principal: Principal, property_id: int, image_ids: Sequence[int]
) -> Gallery:
    """Put the gallery in the given order, which must list each of its images exactly once."""
    prop = editable_property(session, principal=principal, property_id=property_id)
    images = images_of(session, prop)
    by_id = {image.id: image for image in images}
    errors: list[str] = []
    counts = Counter(image_ids)
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        errors.append("listed more than once: " + ", ".join(map(str, duplicates)))
    unknown = [i for i in counts if i not in by_id]
    if unknown:
        errors.append("not images of this property: " + ", ".join(map(str, unknown)))
    missing = [i for i in by_id if i not in counts]
    if missing:
        errors.append("missing from the order: " + ", ".join(map(str, missing)))
    if errors:
        raise RuleViolation(
            "The order must list every image of the property exactly once; " + "; ".join(errors)
        )
    for position, image_id in enumerate(image_ids):
        by_id[image_id].position = position
    session.flush()
    return Gallery(prop, images_of(session, prop))


def set_cover(
    session: Session, *, principal: Principal, property_id: int, image_id: int
) -> Gallery:
    prop = editable_property(session, principal=principal, property_id=property_id)
    try:
        image = _image_of(session, prop, image_id)
    except NotFound as exc:
        raise RuleViolation(f"Image {image_id} is not an image of this property") from exc
    prop.cover_image_id = image.id
    session.flush()
    return Gallery(prop, images_of(session, prop))


def delete_image(
    session: Session, storage: Storage, *, principal: Principal, property_id: int, image_id: int
) -> Gallery:
    """Remove an image; its files go once the deletion commits. A deleted cover passes to the
    image that followed it (or, if it was the last, the one before)."""
    prop = editable_property(session, principal=principal, property_id=property_id)
    image = _image_of(session, prop, image_id)
    images = images_of(session, prop)
    index = next(i for i, other in enumerate(images) if other.id == image.id)
    remaining = images[:index] + images[index + 1 :]
    if prop.cover_image_id == image.id or prop.cover_image_id not in {r.id for r in remaining}:
        successor = remaining[min(index, len(remaining) - 1)] if remaining else None
        prop.cover_image_id = successor.id if successor else None
    doomed: list[tuple[Storage, str]] = session.info.setdefault(_DOOMED_KEY, [])
    doomed.extend([(storage, image.storage_key), (storage, image.thumbnail_key)])
    session.delete(image)
    for position, other in enumerate(remaining):
        other.position = position
    session.flush()
    return Gallery(prop, remaining)


def image_url(image: PropertyImage, size: str) -> str:
    return f"/media/properties/{image.id}/{size}?v={version_of(image)}"
