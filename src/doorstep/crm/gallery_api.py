"""Routes of a property's photo gallery, and the media route that serves its files.

`router` holds the JSON routes under relative paths; crm/api.py includes it in its `/api`
router. `media_router` serves `/media/properties/{image_id}/{size}` and is mounted at the root
(next to the pages), outside `/api`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from doorstep.crm import gallery
from doorstep.crm.storage import Storage, storage_for
from doorstep.platform.errors import NotFound
from doorstep.platform.http import DB, CurrentPrincipal, DoorstepRoute
from doorstep.platform.observability import allow_uploads
from doorstep.platform.schemas import StrictModel

router = APIRouter(route_class=DoorstepRoute, tags=["crm"])
media_router = APIRouter(route_class=DoorstepRoute, include_in_schema=False)
IMAGES = "/properties/{property_id:int}/images"
# Photo uploads may exceed the general body limit (settings.max_upload_bytes instead).
allow_uploads(r"/api/properties/\d+/images")
# The files behind a media URL never change (a new upload is a new image with a new key), so
# browsers may keep them; "private" because only signed-in staff may fetch them.
CACHE_FOREVER = "private, max-age=31536000, immutable"


def _storage(request: Request) -> Storage:
    return storage_for(request.app.state.settings.media_dir)


MediaStorage = Annotated[Storage, Depends(_storage)]


class ImageRead(BaseModel):
    id: int
    position: int
    url: str
    thumbnail_url: str
    width: int
    height: int
    size_bytes: int
    original_name: str
    is_cover: bool


class ImageOrder(StrictModel):
    image_ids: list[int] = Field(
        max_length=gallery.MAX_IMAGES_PER_PROPERTY,
        description="Every image id of the property, once each, in the new order",
    )


class CoverChoice(StrictModel):
    image_id: int = Field(ge=1)


class MediaSize(StrEnum):
    full = "full"
    thumb = "thumb"


@router.get(IMAGES, response_model=list[ImageRead])
def list_images(db: DB, principal: CurrentPrincipal, property_id: int) -> list[dict[str, Any]]:
    """The property's images in gallery order; the cover is marked."""
    return gallery.list_images(db, principal=principal, property_id=property_id).json()


@router.post(IMAGES, status_code=201, response_model=list[ImageRead])
def upload_images(
    db: DB,
    principal: CurrentPrincipal,
    storage: MediaStorage,
    property_id: int,
    files: Annotated[
        list[UploadFile],
        File(description="One or more images (JPEG, PNG, WebP, GIF, BMP, TIFF), 20 MB each"),
    ],
) -> list[dict[str, Any]]:
    """Add images (multipart/form-data, field `files`): optimised, all or none."""
    uploads = [gallery.Upload(name=f.filename or "", file=f.file) for f in files]
    result = gallery.upload_images(
        db, storage, principal=principal, property_id=property_id, uploads=uploads
    )
    return result.json()


@router.put(IMAGES + "/order", response_model=list[ImageRead])
def reorder_images(
    db: DB, principal: CurrentPrincipal, property_id: int, body: ImageOrder
) -> list[dict[str, Any]]:
    """Save a new order: the full list of the property's image ids."""
    result = gallery.reorder(
        db, principal=principal, property_id=property_id, image_ids=body.image_ids
    )
    return result.json()


@router.put("/properties/{property_id:int}/cover", response_model=list[ImageRead])
def choose_cover(
    db: DB, principal: CurrentPrincipal, property_id: int, body: CoverChoice
) -> list[dict[str, Any]]:
    """Make one of the property's images its cover."""
    result = gallery.set_cover(
        db, principal=principal, property_id=property_id, image_id=body.image_id
    )
    return result.json()


@router.delete(IMAGES + "/{image_id:int}", response_model=list[ImageRead])
def delete_image(
    db: DB, principal: CurrentPrincipal, storage: MediaStorage, property_id: int, image_id: int
) -> list[dict[str, Any]]:
    """Remove an image and its files; a deleted cover passes to the next image."""
    result = gallery.delete_image(
        db, storage, principal=principal, property_id=property_id, image_id=image_id
    )
    return result.json()


@media_router.get("/media/properties/{image_id:int}/{size}", name="property_media")
def media(
    db: DB, principal: CurrentPrincipal, storage: MediaStorage, image_id: int, size: MediaSize
) -> Response:
    """An image file, to those who may read its property (404 to everyone else)."""
    image, _prop = gallery.media_file(db, principal=principal, image_id=image_id)
    key = image.storage_key if size == MediaSize.full else image.thumbnail_key
    headers = {"Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff"}
    path = storage.path(key)
    if path is not None:
        return FileResponse(path, media_type=image.content_type, headers=headers)
    if not storage.exists(key):
        raise NotFound(f"The file of image {image_id} is missing")
    return Response(storage.open(key), media_type=image.content_type, headers=headers)
